/**
 * What each example config must program, as `ipvsadm -Ln` prints it (after its three header lines).
 * Written independently of src/ipvs/format.ts (printf-style widths of ipvsadm's print_service_entry).
 */
export const EXPECTED_TABLES: Record<string, string> = {
  'nat-pair': 'TCP  192.0.2.100:8080 wrr persistent 300\n  -> 198.51.100.11:3128           Masq    1      0          0         \n  -> 198.51.100.12:3128           Masq    2      0          0         \n  -> 198.51.100.13:3128           Masq    2      0          0         \n',
  'dr-cluster': 'TCP  192.0.2.80:80 wlc\n  -> 192.0.2.21:80                Route   10     0          0         \n  -> 192.0.2.22:80                Route   10     0          0         \nUDP  192.0.2.80:53 sh (sh-port) ops\n  -> 192.0.2.21:53                Route   1      0          0         \n  -> 192.0.2.22:53                Route   1      0          0         \n',
  'tun-cluster': 'TCP  203.0.113.10:80 lc\n  -> 198.51.100.41:80             Tunnel  2      0          0         \n  -> 203.0.113.31:80              Tunnel  1      0          0         \n  -> 203.0.113.32:80              Tunnel  1      0          0         \n',
  'vrrp-only': '',
};
