import { isIPv6 } from 'node:net';

/**
 * This instance's own address, the default of --server-advertise-url: the host of --server-addr when
 * it names one (an IP, bracketed when IPv6), else the machine's hostname — never --cache-hostname,
 * which in a cluster is the load balancer's name and does not reach this instance.
 */
export function defaultAdvertiseUrl(listenHost: string, port: number, machineHostname: string): string {
  const host = isUnspecified(listenHost) ? machineHostname : listenHost;
  return `http://${isIPv6(host) ? `[${host}]` : host}:${port}`;
}

/** '' (every interface), 0.0.0.0, or the IPv6 unspecified address in any spelling (::, 0::0, ...). */
function isUnspecified(host: string): boolean {
  if (host === '' || host === '0.0.0.0') return true;
  return isIPv6(host) && host.split(/:+/).every((group) => /^0*$/.test(group));
}

const OWNER_ID_PATH = '/_ncps/instance/';

/**
 * The owner of a download announcement: the URL at which the other instances reach the owner, then
 * the owner's instance id as a path, `<advertise URL>/_ncps/instance/<id>`. With the id, a peer that
 * answers at that URL can tell whether it is the instance meant. As a path (not a '#' fragment), it
 * keeps an instance of an earlier version, which appends the peer route to the whole value, on a
 * route that does not exist (404: not streamed) instead of the root page (a 200 it would relay).
 */
export function ownerRef(advertiseUrl: string, instanceId: string): string {
  return `${advertiseUrl}${OWNER_ID_PATH}${instanceId}`;
}

export function parseOwnerRef(ref: string): { url: string; instanceId?: string } {
  const at = ref.lastIndexOf(OWNER_ID_PATH);
  const instanceId = at < 0 ? '' : ref.slice(at + OWNER_ID_PATH.length);
  return /^[\w-]+$/.test(instanceId) ? { url: ref.slice(0, at), instanceId } : { url: ref };
}
