/** The only place that touches process.env: everything else receives the environment or the config. */
export function processEnvironment(): NodeJS.ProcessEnv {
  return process.env;
}
