// Docker HEALTHCHECK: GET /health on the port ncps listens on. The port comes from SERVER_ADDR
// (`[host]:port`, default :8501), so set the address through the environment in containers.
const addr = process.env.SERVER_ADDR || ':8501';
const port = addr.slice(addr.lastIndexOf(':') + 1) || '8501';
fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(4000) }).then(
  (res) => process.exit(res.status === 200 ? 0 : 1),
  () => process.exit(1),
);
