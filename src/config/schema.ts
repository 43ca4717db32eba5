/**
 * The cluster configuration schema (zod v4, strict: unknown keys are errors).
 *
 * Keys are snake_case like keepalived.conf so operators can map one onto the other. Defaults follow
 * keepalived 2.2.7 where it has one (documented in docs/config.md, which a test keeps complete).
 * Durations are numbers of seconds (fractions allowed where the mechanism allows them).
 */
import { z } from 'zod';
import { isIPv4, isIPv6 } from 'node:net';
import { parseEndpoint, parsePrefix } from '../core/address.js';

// ---------------------------------------------------------------- primitives

export const ipAddress = z
  .string()
  .refine((s) => isIPv4(s) || isIPv6(s), { message: 'expected an IPv4 or IPv6 address' });

export const ipv4Address = z.string().refine((s) => isIPv4(s), { message: 'expected an IPv4 address' });

/** Address with optional prefix length ("192.0.2.10/24", "2001:db8::10/64", "192.0.2.10"). */
export const ipPrefix = z
  .string()
  .refine((s) => parsePrefix(s) !== undefined, { message: 'expected an address with optional /prefix, e.g. 192.0.2.10/24' });

export const port = z.number().int().min(0).max(65535);
export const portNonZero = z.number().int().min(1).max(65535);

/** "192.0.2.1:9650" or "[::1]:9650". */
export const endpoint = z
  .string()
  .refine((s) => parseEndpoint(s) !== undefined, { message: 'expected ADDRESS:PORT, e.g. 127.0.0.1:9650 or [::1]:9650' });

export const seconds = z.number().positive();
export const ifaceName = z
  .string()
  .min(1)
  .max(15)
  .regex(/^[^\s/:]+$/, { message: 'expected an interface name (at most 15 characters, no spaces, "/" or ":")' });
export const name = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_.-]+$/, { message: 'expected a name of letters, digits, "_", "." or "-"' });

/** A command: either one string (split on spaces, no shell) or an argv array. */
export const command = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

/** A user scripts run as: "NAME" (its primary group) or "NAME:GROUP" (keepalived script_user). */
export const scriptUser = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$/, { message: 'expected USER or USER:GROUP' });

export const logLevel = z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);

// ---------------------------------------------------------------- VRRP

export const virtualAddress = z.union([
  ipPrefix,
  z.strictObject({
    address: ipPrefix,
    device: ifaceName.optional(),
    /** keepalived's "scope" (global|site|link|host). */
    scope: z.enum(['global', 'site', 'link', 'host']).default('global'),
    label: z.string().max(15).optional(),
  }),
]);

export const trackInterface = z.union([
  ifaceName,
  z.strictObject({
    name: ifaceName,
    /** keepalived's rule: 0 = link down puts the instance in FAULT; a positive weight is added while the link is up, a negative one while it is down. */
    weight: z.number().int().min(-253).max(253).default(0),
  }),
]);

export const trackScriptRef = z.union([
  name,
  z.strictObject({
    name,
    /** Overrides the script's own weight for this instance. */
    weight: z.number().int().min(-253).max(253).optional(),
  }),
]);

export const trackVirtualServerRef = z.strictObject({
  /** Name of a virtual server (its `name`) whose quorum this instance follows. */
  name,
  /** keepalived's rule: 0 = quorum lost puts the instance in FAULT; a positive weight is added while the quorum is up, a negative one while it is lost. */
  weight: z.number().int().min(-253).max(253).default(0),
});

export const notify = z.strictObject({
  master: command.optional(),
  backup: command.optional(),
  fault: command.optional(),
  stop: command.optional(),
  /** Called on every transition with arguments: TYPE NAME STATE PRIORITY (keepalived's "notify"). */
  any: command.optional(),
  /** Seconds a notify script may run before it is killed. */
  timeout: seconds.default(30),
});

export const garp = z.strictObject({
  /** Seconds after becoming master before the second burst (keepalived vrrp_garp_master_delay 5). */
  master_delay: z.number().min(0).default(5),
  /** Gratuitous ARPs / unsolicited NAs per burst (keepalived vrrp_garp_master_repeat 5). */
  master_repeat: z.number().int().min(1).max(100).default(5),
  /** Seconds between periodic refresh bursts while master; 0 = off (keepalived default). */
  master_refresh: z.number().min(0).default(0),
  /** Packets per refresh burst (keepalived vrrp_garp_master_refresh_repeat 1). */
  master_refresh_repeat: z.number().int().min(1).max(100).default(1),
  /** Seconds between packets inside a burst; 0 = back to back (keepalived vrrp_garp_interval 0). */
  interval: z.number().min(0).max(1).default(0),
  /**
   * Packets per burst when a Master answers a lower-priority master (keepalived garp_lower_prio_repeat,
   * default master_repeat); 0 = answer with the advert only.
   */
  lower_prio_repeat: z.number().int().min(0).max(100).optional(),
  /** Seconds before the second burst of that answer; 0 = none (keepalived garp_lower_prio_delay, default master_delay). */
  lower_prio_delay: z.number().min(0).optional(),
});

export const vrrpInstance = z
  .strictObject({
    name,
    interface: ifaceName,
    virtual_router_id: z.number().int().min(1).max(255),
    /** 255 is reserved for the address owner (RFC 5798 §5.2.4). Default 100, or 255 with initial_state MASTER (keepalived). */
    priority: z.number().int().min(1).max(255).optional(),
    version: z.union([z.literal(2), z.literal(3)]).default(2),
    /** Seconds. VRRPv2: whole seconds 1–255. VRRPv3: 0.01–40.95 (centiseconds on the wire). */
    advert_interval: z.number().positive().max(255).default(1),
    /** keepalived `state`: MASTER + priority 255 starts as master at once. Default MASTER for priority 255, else BACKUP. */
    initial_state: z.enum(['BACKUP', 'MASTER']).optional(),
    preempt: z.boolean().default(true),
    /** Seconds a higher-priority backup waits before preempting (keepalived preempt_delay, 0–1000). */
    preempt_delay: z.number().min(0).max(1000).default(0),
    virtual_addresses: z.array(virtualAddress).min(1),
    /** Addresses handled like virtual_addresses but not carried in adverts (keepalived virtual_ipaddress_excluded). */
    virtual_addresses_excluded: z.array(virtualAddress).default([]),
    /** Source address of adverts; default: the interface's primary address of the family. */
    unicast_src: ipAddress.optional(),
    /** When set, adverts go to these peers only and are accepted only from them. */
    unicast_peers: z.array(ipAddress).default([]),
    /** Allow-list of advert sources, multicast too: adverts from any other address are dropped and counted (not_peer). Empty: any source (the RFC's default). */
    peers: z.array(ipAddress).default([]),
    /** VRRPv2 authentication, keepalived-compatible (RFC 2338 §5.3.6): `PASS` carries the password in every advert, `AH` an IP Authentication Header (HMAC-MD5-96 keyed with it); adverts without it are dropped. */
    authentication: z
      .strictObject({
        type: z.enum(['PASS', 'AH']),
        /** 1–8 characters (the 8-byte authentication data field, also the AH key); keepalived's auth_pass. */
        password: z.string().min(1).max(8),
      })
      .optional(),
    /** Accept packets for VIPs while master (RFC 5798 Accept_Mode). */
    accept: z.boolean().default(true),
    track_interfaces: z.array(trackInterface).default([]),
    track_scripts: z.array(trackScriptRef).default([]),
    track_virtual_servers: z.array(trackVirtualServerRef).default([]),
    notify: notify.optional(),
    garp: garp.prefault({}),
    /** A Master does not answer a lower-priority master with an advert (keepalived lower_prio_no_advert; RFC 5798 §6.4.3 "discard"). */
    lower_prio_no_advert: z.boolean().default(false),
    /** A Master sends one advert before stepping down for a higher-priority one (keepalived higher_prio_send_advert). */
    higher_prio_send_advert: z.boolean().default(false),
    /** Send a priority-0 advert on graceful stop so the backup takes over after Skew_Time. */
    priority_zero_on_stop: z.boolean().default(true),
    /** Graceful stop keeps the VIPs until the new master advertises (at most two advert intervals, at most 2 s). */
    stop_handover: z.boolean().default(true),
    /** For VRRPv3 over IPv4, also accept v2 adverts (keepalived's vrrp_version 3 interop is strict; off). */
    accept_v2_adverts: z.boolean().default(false),
    /** While Master, threads outside the event loop send the advert when the loop is held up (see docs/config.md). */
    advert_backstop: z.boolean().default(true),
    /** While Backup, threads outside the event loop take over at the master_down deadline when the loop is held up (see docs/config.md). */
    takeover_thread: z.boolean().default(true),
  });

export const vrrpScript = z.strictObject({
  name,
  script: command,
  /** Seconds between runs (keepalived interval 1). */
  interval: seconds.default(1),
  /** Seconds before a run is killed and counted as failed; default = interval. */
  timeout: seconds.optional(),
  /** Priority change while the script fails (negative) or succeeds (positive); 0 = failure → FAULT. */
  weight: z.number().int().min(-253).max(253).default(0),
  rise: z.number().int().min(1).default(1),
  fall: z.number().int().min(1).default(1),
  /** Run this script as USER or USER:GROUP instead of global.script_user. */
  script_user: scriptUser.optional(),
});

export const vrrpSyncGroup = z.strictObject({
  name,
  members: z.array(name).min(1),
  notify: notify.optional(),
});

// ---------------------------------------------------------------- health checks

const checkCommon = {
  /** Address to connect to instead of the real server's address. */
  connect_address: ipAddress.optional(),
  /** Port to connect to instead of the real server's port. */
  connect_port: portNonZero.optional(),
  /** Source address for the check's socket. */
  bind_address: ipAddress.optional(),
  /** Seconds; overrides the real server's check timeout. */
  timeout: seconds.optional(),
};

export const statusSpec = z.union([
  z.number().int().min(100).max(599),
  z.string().regex(/^[1-5]\d\d-[1-5]\d\d$/, { message: 'expected a status code or range like "200-299"' }),
]);

export const tcpCheck = z.strictObject({ type: z.literal('tcp'), ...checkCommon });

const httpFields = {
  ...checkCommon,
  path: z.string().startsWith('/').default('/'),
  /** Accepted status codes or ranges (default 200-299). */
  status: z.array(statusSpec).min(1).default(['200-299']),
  /** Regular expression the body must match. */
  body_regex: z.string().optional(),
  /** Hex MD5 of the body (keepalived's digest), or sha256:HEX. */
  digest: z
    .string()
    .regex(/^(sha256:[0-9a-fA-F]{64}|[0-9a-fA-F]{32})$/, { message: 'expected 32 hex digits (MD5) or sha256:64 hex digits' })
    .optional(),
  /** Host header; default: the address being checked. */
  host: z.string().optional(),
  method: z.enum(['GET', 'HEAD']).default('GET'),
  /** Bytes of body read at most. */
  max_body: z.number().int().min(0).max(16 * 1024 * 1024).default(65536),
};

export const httpCheck = z.strictObject({ type: z.literal('http'), ...httpFields });
export const httpsCheck = z.strictObject({
  type: z.literal('https'),
  ...httpFields,
  tls: z
    .strictObject({
      /** Server name sent in the TLS handshake. */
      sni: z.string().optional(),
      /** Verify the certificate chain and name (off by default, like keepalived's SSL_GET). */
      verify: z.boolean().default(false),
      /** PEM file of CA certificates used when verify is on. */
      ca_file: z.string().optional(),
    })
    .prefault({}),
});

export const udpCheck = z.strictObject({
  type: z.literal('udp'),
  ...checkCommon,
  /** Payload to send: text, or hex when prefixed with "hex:". */
  payload: z.string().default(''),
  /** Reply that must be received (text or "hex:"); absent = any reply or silence until timeout counts as up. */
  expect: z.string().optional(),
  /** Treat ICMP port unreachable as down (keepalived UDP_CHECK require_reply semantics). */
  icmp_unreachable_down: z.boolean().default(true),
  /** A reply is required (silence until timeout is down). */
  require_reply: z.boolean().default(false),
});

export const dnsCheck = z.strictObject({
  type: z.literal('dns'),
  ...checkCommon,
  name: z.string().min(1).default('.'),
  qtype: z.enum(['A', 'AAAA', 'NS', 'SOA', 'MX', 'TXT', 'CNAME', 'PTR', 'SRV']).default('SOA'),
  transport: z.enum(['udp', 'tcp']).default('udp'),
  /** Expected response code (default NOERROR). */
  expect_rcode: z.enum(['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED']).default('NOERROR'),
  /** Answers that must be present (addresses for A/AAAA, names otherwise). */
  expect_answers: z.array(z.string()).default([]),
});

export const execCheck = z.strictObject({
  type: z.literal('exec'),
  command,
  timeout: seconds.optional(),
  /** keepalived MISC_CHECK misc_dynamic: exit status 2–255 sets weight = status - 2. */
  dynamic_weight: z.boolean().default(false),
  /** Extra environment passed to the script. */
  env: z.record(z.string(), z.string()).default({}),
  /** Run this check as USER or USER:GROUP instead of global.script_user. */
  script_user: scriptUser.optional(),
});

export const CHECK_TYPES = ['tcp', 'http', 'https', 'udp', 'dns', 'exec'] as const;
export const healthCheck = z.discriminatedUnion('type', [tcpCheck, httpCheck, httpsCheck, udpCheck, dnsCheck, execCheck]);

/** Check policy; set on a virtual server (default for its real servers) or a real server. */
const policyFields = {
  /** Seconds between checks (keepalived delay_loop, default 60). */
  interval: seconds.optional(),
  /** Seconds a single check may take (keepalived connect_timeout, default 5). */
  timeout: seconds.optional(),
  /** Consecutive successes before a down server is up (keepalived: 1). */
  rise: z.number().int().min(1).max(100).optional(),
  /** Consecutive failures before an up server is down (keepalived retry + 1; default 2 = keepalived's retry 1). */
  fall: z.number().int().min(1).max(100).optional(),
  /** Seconds before re-checking after a failure (keepalived delay_before_retry 1). */
  retry_delay: z.number().min(0).optional(),
  /** Start down until proven up (keepalived alpha). */
  alpha: z.boolean().optional(),
  /** Set weight 0 instead of removing a failed server, so its connections drain. */
  inhibit_on_failure: z.boolean().optional(),
};

// ---------------------------------------------------------------- IPVS

export const SCHEDULERS = ['rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'mh', 'sed', 'nq', 'fo', 'ovf'] as const;
/** IP_VS_SVC_F_SCHED1..3; sh/mh give them names (sh-fallback, sh-port / mh-fallback, mh-port). */
export const SCHEDULER_FLAGS = ['flag-1', 'flag-2', 'flag-3', 'sh-fallback', 'sh-port', 'mh-fallback', 'mh-port'] as const;

export const tunnel = z.strictObject({
  type: z.enum(['ipip', 'gue', 'gre']).default('ipip'),
  /** UDP destination port, GUE only. */
  port: portNonZero.optional(),
  /** Checksum option for GUE/GRE. */
  checksum: z.enum(['none', 'csum', 'remcsum']).default('none'),
});

export const forwarding = z.enum(['nat', 'dr', 'tun']);

export const realServer = z.strictObject({
  address: ipAddress,
  /** Port of the real server; default = the virtual server's port (must equal it for dr/tun). */
  port: port.optional(),
  weight: z.number().int().min(0).max(2147483647).default(1),
  /** Overrides the virtual server's forwarding method for this real server. */
  forwarding: forwarding.optional(),
  tunnel: tunnel.optional(),
  /** Stop scheduling new connections above this many (0 = no limit). */
  upper_threshold: z.number().int().min(0).max(2147483647).default(0),
  /** Resume scheduling below this many (0 = no limit). */
  lower_threshold: z.number().int().min(0).max(2147483647).default(0),
  checks: z.array(healthCheck).default([]),
  ...policyFields,
  notify_up: command.optional(),
  notify_down: command.optional(),
});

export const sorryServer = z.strictObject({
  address: ipAddress,
  port: port.optional(),
  forwarding: forwarding.optional(),
  weight: z.number().int().min(1).default(1),
  /** Keep the sorry server in the table with weight 0 while real servers are healthy. */
  inhibit: z.boolean().default(false),
});

export const virtualServer = z
  .strictObject({
    /** Name used in logs, metrics, track_virtual_servers; default ADDRESS:PORT/proto or fwm:N. */
    name: name.optional(),
    address: ipAddress.optional(),
    port: port.optional(),
    fwmark: z.number().int().min(1).max(0xffffffff).optional(),
    /** Address family of a fwmark service (inferred from address otherwise). */
    family: z.enum(['ipv4', 'ipv6']).optional(),
    protocol: z.enum(['tcp', 'udp', 'sctp']).default('tcp'),
    scheduler: z.enum(SCHEDULERS).default('wlc'),
    scheduler_flags: z.array(z.enum(SCHEDULER_FLAGS)).default([]),
    persistence: z
      .strictObject({
        /** Seconds (ipvsadm default 300). */
        timeout: z.number().int().min(1).max(2147483).default(300),
        /** Netmask (IPv4 dotted) or prefix length grouping clients for persistence. */
        netmask: z.union([ipv4Address, z.number().int().min(1).max(128)]).optional(),
        /** Persistence engine, e.g. "sip". */
        engine: z.string().min(1).max(16).optional(),
      })
      .optional(),
    /** Schedule each UDP datagram independently (IP_VS_SVC_F_ONEPACKET). */
    one_packet: z.boolean().default(false),
    forwarding: forwarding.default('nat'),
    tunnel: tunnel.optional(),
    /** Minimum total weight of healthy real servers for the service to be "up". */
    quorum: z.number().int().min(1).default(1),
    /** Quorum must recover to quorum + hysteresis to come back up. */
    hysteresis: z.number().int().min(0).default(0),
    quorum_up: command.optional(),
    quorum_down: command.optional(),
    sorry_server: sorryServer.optional(),
    ...policyFields,
    real_servers: z.array(realServer).default([]),
  })
  .superRefine((vs, ctx) => {
    const hasAddr = vs.address !== undefined;
    const hasMark = vs.fwmark !== undefined;
    if (hasAddr === hasMark) {
      ctx.addIssue({ code: 'custom', message: 'declare either address and port, or fwmark', path: hasAddr ? ['fwmark'] : [] });
    }
    if (hasAddr && vs.port === undefined) {
      ctx.addIssue({ code: 'custom', message: 'port is required with address (0 = all ports, needs persistence)', path: [] });
    }
    if (hasMark && vs.port !== undefined) {
      ctx.addIssue({ code: 'custom', message: 'a fwmark service has no port', path: ['port'] });
    }
    if (vs.port === 0 && !vs.persistence) {
      ctx.addIssue({ code: 'custom', message: 'port 0 (all ports) requires persistence', path: ['port'] });
    }
    if (hasAddr && vs.family) {
      const fam = isIPv6(vs.address!) ? 'ipv6' : 'ipv4';
      if (fam !== vs.family) ctx.addIssue({ code: 'custom', message: `family ${vs.family} contradicts address ${vs.address}`, path: ['family'] });
    }
    if (vs.hysteresis >= vs.quorum && vs.hysteresis > 0) {
      ctx.addIssue({ code: 'custom', message: 'hysteresis must be smaller than quorum', path: ['hysteresis'] });
    }
  });

// ---------------------------------------------------------------- sync, api, global

export const sync = z.strictObject({
  /** Interface the sync multicast is sent and received on. */
  interface: ifaceName,
  /**
   * master: send; backup: receive; both; auto (default): follow the VRRP instance named in
   * `vrrp_instance` (send while master, receive while backup), like keepalived's lvs_sync_daemon.
   */
  mode: z.enum(['auto', 'master', 'backup', 'both']).default('auto'),
  vrrp_instance: name.optional(),
  /** IPVS sync id (0–255) shared by both directors. */
  sync_id: z.number().int().min(0).max(255).default(0),
  group: ipAddress.default('224.0.0.81'),
  port: portNonZero.default(8848),
  ttl: z.number().int().min(1).max(255).default(1),
  /** Max sync message length in bytes; default from the interface MTU. */
  maxlen: z.number().int().min(256).max(65507).optional(),
  /**
   * kernel (default): the kernel's own multicast sync daemons (works with keepalived peers).
   * lvsd: lvsd's authenticated channel; records go out as soon as they are seen and each director
   * feeds its own kernel through a backup daemon on lo (docs/sync.md).
   */
  channel: z.enum(['kernel', 'lvsd']).default('kernel'),
  /** channel lvsd: file holding the HMAC-SHA256 key (a second line: the other key accepted during a rotation). */
  key_file: z.string().min(1).optional(),
  /** channel lvsd: the peer directors' addresses (unicast, IPv4 or IPv6); empty → multicast to 224.0.0.81 on `interface`. */
  peers: z.array(ipAddress).default([]),
  /** channel lvsd: the longest period between the active director's reads of its connection table, in milliseconds (in a worker thread; a cheap read is followed sooner, after 9× its duration and at least 10 ms; a read slower than this waits as long as it took before the next; while the kernel stream runs, a read is followed after 9× its duration whenever the stream brings records or the read is slower than this). */
  poll_interval: z.number().int().min(10).max(5000).default(50),
  /**
   * channel lvsd: the local port of the kernel stream (docs/sync.md "Two sources"): on the active
   * director the kernel's master sync daemon on lo sends every new connection to 224.0.0.81 at this
   * port, where lvsd reads it at once instead of waiting for a table read. Default 8849 (8850 when
   * `port` is 8849). 0: no kernel stream; new connections wait for the table reads.
   */
  stream_port: z.number().int().min(0).max(65535).optional(),
  /**
   * channel lvsd: the local port of the hand-over (docs/sync.md step 3): the kernel's backup sync
   * daemon on lo listens at 224.0.0.81 on this port and installs the peer's records lvsd sends it.
   * Default: the lowest port from 8850 up that is neither `port` nor `stream_port`.
   */
  handover_port: portNonZero.optional(),
  /** channel lvsd: at start, how long the wait for the active peer's table before the election starts may stay silent (seconds): each message of a table still arriving restarts it (60 s at most in all). */
  resync_timeout: z.number().min(0).max(60).default(3),
});

export const api = z.strictObject({
  /** HTTP listen address for /metrics, /healthz, /status. Loopback by default. */
  listen: endpoint.default('127.0.0.1:9650'),
  /** The per virtual server / real server series read from the kernel at scrape time (src/ipvs/table-metrics.ts). */
  table_metrics: z
    .strictObject({
      /** false: none of them, and no kernel read at scrape time. */
      enabled: z.boolean().default(true),
      /** Above this many declared real servers (sorry servers included), the per-real-server series are left out. */
      max_real_servers: z.number().int().min(0).default(100_000),
    })
    .prefault({}),
});

export const ipvsGlobal = z.strictObject({
  /** When true, lvsd owns the whole IPVS table and removes services it does not declare. */
  exclusive: z.boolean().default(false),
  /** Seconds between drift checks (kernel table compared with the desired one); 0 = off. */
  drift_check_interval: z.number().min(0).default(10),
  /** Kernel connection timeouts in seconds (ipvsadm --set); unset = leave the kernel's. */
  timeouts: z
    .strictObject({ tcp: z.number().int().min(0).optional(), tcp_fin: z.number().int().min(0).optional(), udp: z.number().int().min(0).optional() })
    .optional(),
});

export const global = z.strictObject({
  /** Identifies this director in logs and /status (default: hostname). */
  router_id: z.string().min(1).max(64).optional(),
  log_level: logLevel.default('info'),
  /** Directory of the single-instance lock file (src/daemon/lock.ts). */
  state_dir: z.string().min(1).default('/run/lvsd'),
  api: api.prefault({}),
  ipvs: ipvsGlobal.prefault({}),
  /** Seconds a graceful stop may take before lvsd exits anyway. */
  shutdown_timeout: seconds.default(5),
  /**
   * Scheduling priority (nice, -20..19) lvsd gives itself at start, like keepalived's vrrp_priority.
   * A negative value keeps adverts on time when other work loads the CPU. Unset = leave it as started.
   */
  nice: z.number().int().min(-20).max(19).optional(),
  /** Every script lvsd runs runs as USER or USER:GROUP (keepalived script_user); unset: as lvsd. */
  script_user: scriptUser.optional(),
});

export const clusterConfig = z.strictObject({
  global: global.prefault({}),
  vrrp_scripts: z.array(vrrpScript).default([]),
  vrrp_instances: z.array(vrrpInstance).default([]),
  vrrp_sync_groups: z.array(vrrpSyncGroup).default([]),
  virtual_servers: z.array(virtualServer).default([]),
  sync: sync.optional(),
});

export type ClusterConfigInput = z.input<typeof clusterConfig>;
export type ClusterConfigParsed = z.output<typeof clusterConfig>;
export type VrrpInstanceConfigParsed = z.output<typeof vrrpInstance>;
export type VirtualServerConfigParsed = z.output<typeof virtualServer>;
export type RealServerConfigParsed = z.output<typeof realServer>;
export type HealthCheckConfig = z.output<typeof healthCheck>;
export type SyncConfig = z.output<typeof sync>;
