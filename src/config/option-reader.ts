import { OptionKind, OptionSpec, OptionValue } from './option';

/** Resolved option values, keyed by flag name (see resolve.ts); an unset option without a default is undefined. */
export type OptionValues = Readonly<Record<string, OptionValue | undefined>>;

/*
 * The types below work on a table whose rows keep their literal types (`as const`, see options.ts): each
 * row's `flag`, `kind`, `default` and `choices` are then known to the compiler. On a table typed
 * `OptionSpec[]` they fall back to plain strings, and only the run-time checks remain.
 */

/** Flags of the rows whose kind is one of `K`. */
type FlagOfKind<S extends OptionSpec, K extends OptionKind> = S extends unknown
  ? [Extract<S['kind'], K>] extends [never]
    ? never
    : S['flag']
  : never;

/** Rows that declare a closed set of values. */
type WithChoices<S extends OptionSpec> = Extract<S, { readonly choices: readonly string[] }>;

/** The row(s) of flag `F`. */
type RowOf<S extends OptionSpec, F extends string> = S extends unknown ? (F extends S['flag'] ? S : never) : never;

/** `T` when every row named by `F` has a default (so the resolved value is always there), else `T | undefined`. */
type Read<S extends OptionSpec, F extends string, T> = [RowOf<S, F>] extends [{ readonly default: string }] ? T : T | undefined;

export type StringFlag<S extends OptionSpec> = FlagOfKind<Exclude<S, WithChoices<S>>, 'string'>;
export type BooleanFlag<S extends OptionSpec> = FlagOfKind<S, 'boolean'>;
export type NumberFlag<S extends OptionSpec> = FlagOfKind<S, 'integer' | 'duration' | 'size'>;
export type ListFlag<S extends OptionSpec> = FlagOfKind<S, 'list'>;
export type ChoiceFlag<S extends OptionSpec> = WithChoices<S>['flag'];
/** The literal union of the values option `F` accepts. */
export type ChoiceOf<S extends OptionSpec, F extends string> = NonNullable<RowOf<S, F>['choices']>[number];

/**
 * Typed access to resolved option values. Each accessor takes only flags of its kind (a misspelled flag
 * or the wrong accessor does not compile) and checks the same at run time: a mismatch is a programming
 * error, thrown as a plain Error, never as a ConfigError blamed on the operator. An option with a default
 * is never undefined once resolved; reading it without a value throws too, which is what lets the
 * signatures promise a defined value for it.
 */
export class OptionReader<S extends OptionSpec> {
  private readonly specs: ReadonlyMap<string, OptionSpec>;

  constructor(
    private readonly values: OptionValues,
    table: readonly S[],
  ) {
    this.specs = new Map(table.map((spec) => [spec.flag, spec]));
  }

  /** A string option without choices (use `choice` for those). */
  string<F extends StringFlag<S>>(flag: F): Read<S, F, string>;
  string(flag: string): string | undefined {
    if (this.spec(flag, 'string', ['string']).choices) throw new Error(`programming error: --${flag} has choices; read it with choice()`);
    return this.read(flag, 'string', ['string'], (v) => (typeof v === 'string' ? v : undefined));
  }

  bool<F extends BooleanFlag<S>>(flag: F): Read<S, F, boolean>;
  bool(flag: string): boolean | undefined {
    return this.read(flag, 'bool', ['boolean'], (v) => (typeof v === 'boolean' ? v : undefined));
  }

  /** An integer, a duration (milliseconds) or a size (bytes). */
  number<F extends NumberFlag<S>>(flag: F): Read<S, F, number>;
  number(flag: string): number | undefined {
    return this.read(flag, 'number', ['integer', 'duration', 'size'], (v) => (typeof v === 'number' ? v : undefined));
  }

  list<F extends ListFlag<S>>(flag: F): Read<S, F, string[]>;
  list(flag: string): string[] | undefined {
    return this.read(flag, 'list', ['list'], (v) => (Array.isArray(v) ? v : undefined));
  }

  /** A string option with choices, as the literal union of its choices. */
  choice<F extends ChoiceFlag<S>>(flag: F): Read<S, F, ChoiceOf<S, F>>;
  choice(flag: string): string | undefined {
    const choices = this.spec(flag, 'choice', ['string']).choices;
    if (!choices) throw new Error(`programming error: --${flag} has no choices; read it with string()`);
    return this.read(flag, 'choice', ['string'], (v) => (typeof v === 'string' && choices.includes(v) ? v : undefined));
  }

  private spec(flag: string, accessor: string, kinds: readonly OptionKind[]): OptionSpec {
    const spec = this.specs.get(flag);
    if (!spec) throw new Error(`programming error: there is no option --${flag}`);
    if (!kinds.includes(spec.kind)) {
      throw new Error(`programming error: --${flag} is a ${spec.kind} option, it cannot be read with ${accessor}()`);
    }
    return spec;
  }

  private read<T>(
    flag: string,
    accessor: string,
    kinds: readonly OptionKind[],
    narrow: (value: OptionValue) => T | undefined,
  ): T | undefined {
    const spec = this.spec(flag, accessor, kinds);
    const value = this.values[flag];
    if (value === undefined) {
      if (spec.default !== undefined) throw new Error(`programming error: --${flag} has a default but no resolved value`);
      return undefined;
    }
    const narrowed = narrow(value);
    // The value itself is not shown: it may be a secret.
    if (narrowed === undefined) throw new Error(`programming error: --${flag} holds a value that is not a valid ${spec.kind} value`);
    return narrowed;
  }
}
