import { Command } from 'commander';
import { renderConfigurationReference } from 'src/config/reference';

/** Prints the generated configuration documents (used by `npm run docs:config`). */
export function registerDocs(program: Command): void {
  program
    .command('config-reference')
    .description('Print the configuration reference (Markdown) generated from the option table')
    .action(() => void process.stdout.write(renderConfigurationReference()));
  program
    .command('config-example')
    .description('Print a commented example configuration file with every key')
    .action(async () => {
      // Loaded here: the example is YAML, and every `ncps serve` would keep the serialiser otherwise.
      const { renderConfigExample } = await import('src/config/example');
      process.stdout.write(renderConfigExample());
    });
}
