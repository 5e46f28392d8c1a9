/**
 * The files Plinth writes into the installer's root filesystem: /init (PID 1), the DHCP
 * event handler and reboot/poweroff commands. They are part of the base layer's cache key.
 *
 * The kernel command line contract (read by /init and by the agent):
 *   plinth.url=<controller base URL as the machine sees it>   required; without it /init
 *                                                             says so and offers a shell
 *   plinth.run=<run id>  plinth.token=<per-run token>         read by the agent only
 *   plinth.debug=1       a shell on the console whenever the agent exits
 *   plinth.netwait=<s>   how long /init waits for an address (default 60)
 *   ip=<address>::<gateway>:<netmask>::<device>:off:<dns0>:<dns1>
 *                        a static IPv4 address instead of DHCP (the kernel's and
 *                        initramfs-tools' format), on <device>, else on the card whose
 *                        MAC BOOTIF=01-aa-bb-cc-dd-ee-ff names, else the first card
 *
 * NOTE: these are TypeScript template literals: `\${` is a literal `${` in the shell
 * script and `\\` a single backslash. init-script.test.ts checks the result with `sh -n`.
 */

export const AGENT_PATH = '/opt/plinth/agent.mjs';
/**
 * The CA bundle given to `plinth installer build --ca-bundle` (Butterknife shipped its web
 * server's bundle in its image the same way). It travels in the agent layer, so changing it
 * re-packs only that layer; /init hands it to Node as NODE_EXTRA_CA_CERTS, so the agent's
 * fetch trusts an HTTPS controller signed by a private CA, on top of Node's public roots.
 */
export const CA_BUNDLE_PATH = '/opt/plinth/ca-bundle.pem';
export const NODE_PATH = '/usr/local/bin/node';
export const DHCP_EVENT_PATH = '/usr/lib/plinth/dhcp-event';
export const DHCPCD_CONF_PATH = '/usr/lib/plinth/dhcpcd.conf';

export const INIT_SCRIPT = `#!/bin/sh
# Plinth installer: PID 1 of the live initramfs. It mounts the kernel filesystems, lets
# udev load drivers, configures the network and runs the agent, restarting it when it
# fails. It must never exit: the kernel panics when PID 1 ends.

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=linux LANG=C.UTF-8
umask 022
# Kernel command-line words and device names are split on spaces, never globbed.
set -f

AGENT=${AGENT_PATH}
CA_BUNDLE=${CA_BUNDLE_PATH}
STATE=/run/plinth
CONSOLES=/dev/console

uptime_seconds() {
  read -r up _ < /proc/uptime
  echo "\${up%.*}"
}

# Finer steps go to the log only (/run/plinth/init.log), for boot-time analysis.
note() {
  read -r up _ < /proc/uptime 2>/dev/null
  echo "plinth-installer: $* [\${up}s]" >> "$STATE/init.log" 2>/dev/null
}

# Milestones go to every console, each with the time since the kernel started.
say() {
  read -r up _ < /proc/uptime 2>/dev/null
  line="plinth-installer: $* [\${up}s]"
  echo "$line" >> "$STATE/init.log" 2>/dev/null
  for console in $CONSOLES; do
    echo "$line" > "$console"
  done 2>/dev/null
}

mount_kernel_filesystems() {
  mkdir -p /proc /sys /dev /run /tmp
  mount -t proc -o nosuid,nodev,noexec proc /proc
  mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
  mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev
  mkdir -p /dev/pts /dev/shm
  mount -t devpts -o nosuid,noexec,gid=5,mode=0620,ptmxmode=0666 devpts /dev/pts
  mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /dev/shm
  mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs /run
  # devtmpfs has no /dev/fd or /dev/std*; shells and tools expect them.
  ln -sfn /proc/self/fd /dev/fd
  ln -sfn /proc/self/fd/0 /dev/stdin
  ln -sfn /proc/self/fd/1 /dev/stdout
  ln -sfn /proc/self/fd/2 /dev/stderr
  mkdir -p "$STATE/net" /run/lock /var/tmp
  chmod 1777 /tmp /var/tmp
}

# Every active kernel console, plus the first serial port when one exists: a BMC's
# serial-over-LAN shows ttyS0 even when the last console= is the screen.
find_consoles() {
  CONSOLES=""
  for name in $(cat /sys/class/tty/console/active 2>/dev/null); do
    CONSOLES="$CONSOLES /dev/$name"
  done
  case " $CONSOLES " in
    *" /dev/ttyS0 "*) ;;
    *)
      # An 8250 port without a UART behind it reports type 0.
      uart=$(cat /sys/class/tty/ttyS0/type 2>/dev/null)
      if [ -n "$uart" ] && [ "$uart" != 0 ]; then CONSOLES="$CONSOLES /dev/ttyS0"; fi
      ;;
  esac
  [ -n "$CONSOLES" ] || CONSOLES=/dev/console
}

read_cmdline() {
  PLINTH_URL=""
  PLINTH_DEBUG=0
  NET_WAIT=60
  IP_CONFIG=""
  BOOT_IF=""
  for word in $(cat /proc/cmdline); do
    case "$word" in
      ip=*) IP_CONFIG=\${word#ip=} ;;
      BOOTIF=*) BOOT_IF=\${word#BOOTIF=} ;;
      plinth.url=*) PLINTH_URL=\${word#plinth.url=} ;;
      plinth.debug=*) PLINTH_DEBUG=\${word#plinth.debug=} ;;
      plinth.netwait=*) NET_WAIT=\${word#plinth.netwait=} ;;
    esac
  done
  case "$NET_WAIT" in ''|*[!0-9]*) NET_WAIT=60 ;; esac
}

start_udev() {
  # udevd logs at info level to the kernel log otherwise, which floods the console.
  SYSTEMD_LOG_LEVEL=warning /lib/systemd/systemd-udevd --daemon --resolve-names=never > "$STATE/udevd.log" 2>&1
  note "udevd started"
  udevadm trigger --type=subsystems --action=add
  udevadm trigger --type=devices --action=add
  note "coldplug events queued"
  if ! udevadm settle --timeout=60; then
    say "udev did not settle within 60 s; continuing"
  fi
  # Not matched by any device alias: the host side of IPMI (ipmitool's open interface).
  modprobe -q ipmi_devintf
  disks=""
  for disk in $(ls /sys/block); do
    case "$disk" in loop*|ram*|zram*) continue ;; esac
    disks="$disks $disk"
  done
  say "devices ready: $(wc -l < /proc/modules) modules loaded, disks:\${disks:- none}"
}

mount_efivarfs() {
  if [ -d /sys/firmware/efi ]; then
    modprobe -q efivarfs
    if mount -t efivarfs -o nosuid,nodev,noexec efivarfs /sys/firmware/efi/efivars; then
      say "UEFI boot, efivarfs mounted"
    else
      say "UEFI boot, but efivarfs could not be mounted"
    fi
  else
    say "legacy BIOS boot"
  fi
}

# Interfaces backed by hardware (lo, bridges and tunnels have no device link).
physical_links() {
  for name in $(ls /sys/class/net); do
    [ -e "/sys/class/net/$name/device" ] && echo "$name"
  done
}

start_dhcp() {
  busybox udhcpc -f -i "$1" -s ${DHCP_EVENT_PATH} -x hostname:plinth-installer -V plinth-installer \\
    -O mtu -O staticroutes -O search -t 5 -T 2 -A 3 > "$STATE/udhcpc.$1.log" 2>&1 &
  # IPv6: dhcpcd follows router advertisements, forms SLAAC addresses and asks DHCPv6 for an
  # address when the network is "managed". Without it the kernel's own SLAAC still works.
  dhcpcd -f ${DHCPCD_CONF_PATH} -B -j "$STATE/dhcpcd.$1.log" "$1" > /dev/null 2>&1 &
}

# "ens3 10.0.2.15" for every interface whose DHCPv4 lease is applied.
ipv4_up() {
  for link in $LINKS; do
    [ -f "$STATE/net/$link.bound" ] && echo "$link $(cat "$STATE/net/$link.bound")"
  done
}

ipv6_up() {
  ip -6 -o addr show scope global -tentative 2>/dev/null | while read -r _ link _ address _; do
    echo "$link \${address%/*}"
  done
}

# DHCP starts on each link as soon as it has carrier (autonegotiation takes seconds).
# A marker file per link, so that the background watcher and /init agree on what runs.
dhcp_on_carrier() {
  for link in $LINKS; do
    [ -e "$STATE/net/$link.dhcp" ] && continue
    if [ "$(cat "/sys/class/net/$link/carrier" 2>/dev/null)" = 1 ]; then
      : > "$STATE/net/$link.dhcp"
      start_dhcp "$link"
    fi
  done
}

links_with_dhcp() {
  for link in $LINKS; do
    [ -e "$STATE/net/$link.dhcp" ] && echo "$link"
  done
}

# The card a static address goes on: the named device, else the one with BOOTIF's MAC, else the first.
static_link() {
  if [ -n "$1" ] && [ -e "/sys/class/net/$1" ]; then
    echo "$1"
    return
  fi
  if [ -n "$BOOT_IF" ]; then
    mac=$(echo "\${BOOT_IF#01-}" | tr 'A-F-' 'a-f:')
    for link in $LINKS; do
      if [ "$(cat "/sys/class/net/$link/address" 2>/dev/null)" = "$mac" ]; then
        echo "$link"
        return
      fi
    done
  fi
  for link in $LINKS; do
    echo "$link"
    return
  done
}

# ip=<address>:<server>:<gateway>:<netmask>:<hostname>:<device>:<autoconf>:<dns0>:<dns1>: where
# no DHCP server answers (virtual media), the address the controller gave this machine. That
# card gets no DHCP at all; the others still do. ip=dhcp (or none) leaves DHCP in charge.
apply_static_ip() {
  old_ifs=$IFS
  IFS=:
  set -- $IP_CONFIG
  IFS=$old_ifs
  address=$1 gateway=$3 netmask=$4 device=$6 autoconf=$7 dns0=$8 dns1=$9
  case "$autoconf" in ''|off|none|static) ;; *) return 1 ;; esac
  [ -n "$address" ] || return 1
  link=$(static_link "$device")
  [ -n "$link" ] || return 1
  : > "$STATE/net/$link.dhcp"
  # brd +: tools that use the broadcast address (udpcast among them) fail silently without it.
  if ! ip -4 addr add "$address\${netmask:+/$netmask}" brd + dev "$link"; then
    say "could not set the static address $address on $link (ip=$IP_CONFIG)"
    return 1
  fi
  [ -n "$gateway" ] && ip -4 route replace default via "$gateway" dev "$link" onlink
  rm -f "$STATE/net/$link.dns"
  for server in $dns0 $dns1; do echo "$server" >> "$STATE/net/$link.dns"; done
  {
    echo "# written by the Plinth installer from ip= on the kernel command line"
    for server in $dns0 $dns1; do echo "nameserver $server"; done
  } > /etc/resolv.conf
  echo "$address" > "$STATE/net/$link.bound"
  say "static address $address\${netmask:+/$netmask} on $link\${gateway:+, gateway $gateway}, no DHCP on it (ip= on the kernel command line)"
}

bring_up_network() {
  ip link set lo up
  LINKS=$(physical_links)
  if [ -z "$LINKS" ]; then
    say "no network interface found"
    return 1
  fi
  for link in $LINKS; do
    # IPv6: the kernel does SLAAC from router advertisements.
    echo 1 > "/proc/sys/net/ipv6/conf/$link/accept_ra" 2>/dev/null
    echo 1 > "/proc/sys/net/ipv6/conf/$link/autoconf" 2>/dev/null
    ip link set "$link" up
  done
  [ -n "$IP_CONFIG" ] && apply_static_ip
  deadline=$(( $(uptime_seconds) + NET_WAIT ))
  ipv6_since=""
  while :; do
    dhcp_on_carrier
    now=$(uptime_seconds)
    up=$(ipv4_up)
    if [ -n "$up" ]; then
      say "network up on $(echo $up $(ipv6_up))"
      break
    fi
    # An IPv6-only network: give DHCPv4 a few more seconds, then go on without it.
    if [ -n "$(ipv6_up)" ]; then
      [ -n "$ipv6_since" ] || ipv6_since=$now
      if [ $(( now - ipv6_since )) -ge 10 ]; then
        say "network up on $(echo $(ipv6_up)) (no DHCPv4 lease)"
        break
      fi
    fi
    if [ "$now" -ge "$deadline" ]; then
      with_dhcp=$(echo $(links_with_dhcp))
      say "no address after $NET_WAIT s (links: $(echo $LINKS); with carrier: \${with_dhcp:-none}); DHCP keeps trying"
      break
    fi
    sleep 0.2
  done
  # Links whose carrier comes later (a second cable, a slow switch port) still get DHCP.
  (
    while [ "$(uptime_seconds)" -lt "$deadline" ]; do
      dhcp_on_carrier
      sleep 1
    done
  ) &
}

# The tty behind the last console= (the one /dev/console is); tty0 means the screen.
shell_tty() {
  name=""
  for name in $(cat /sys/class/tty/console/active 2>/dev/null); do :; done
  case "$name" in ''|tty0) name=tty1 ;; esac
  echo "/dev/$name"
}

console_shell() {
  say "$1"
  tty=$(shell_tty)
  # A session of its own with the console as controlling tty: job control and Ctrl-C work.
  setsid -w -c /bin/bash -l < "$tty" > "$tty" 2>&1
}

rescue_shell_forever() {
  while :; do
    console_shell "$1"
    sleep 1
  done
}

idle_forever() {
  while :; do sleep 3600; done
}

run_agent() {
  attempt=$((attempt + 1))
  say "starting agent (attempt $attempt)"
  agent_started=$(uptime_seconds)
  # The agent's output goes to every console and to a log file the agent can upload.
  { PLINTH_INSTALLER=1 node "$AGENT" < /dev/null 2>&1; echo $? > "$STATE/agent.status"; } \\
    | tee -a "$STATE/agent.log" $CONSOLES > /dev/null
  agent_status=$(cat "$STATE/agent.status" 2>/dev/null)
  agent_status=\${agent_status:-255}
}

main() {
  mount_kernel_filesystems
  find_consoles
  read_cmdline
  say "init started, kernel $(uname -r)"
  echo plinth-installer > /proc/sys/kernel/hostname
  start_udev
  mount_efivarfs
  bring_up_network

  if [ -z "$PLINTH_URL" ]; then
    rescue_shell_forever "no plinth.url= on the kernel command line, so no agent to run; shell on $(shell_tty)"
  fi
  if [ ! -f "$AGENT" ]; then
    rescue_shell_forever "no agent at $AGENT; shell on $(shell_tty)"
  fi
  say "controller $PLINTH_URL"
  if [ -f "$CA_BUNDLE" ]; then
    export NODE_EXTRA_CA_CERTS="$CA_BUNDLE"
    say "trusting the CA bundle $CA_BUNDLE for HTTPS"
  fi

  attempt=0
  backoff=1
  while :; do
    run_agent
    if [ "$agent_status" = 0 ]; then
      if [ "$PLINTH_DEBUG" = 1 ]; then
        console_shell "agent finished; debug shell (exit it to start the agent again)"
        continue
      fi
      say "agent finished; nothing more to do"
      idle_forever
    fi
    # A failure after a long run is a new problem, not a crash loop: start the backoff over.
    [ $(( $(uptime_seconds) - agent_started )) -ge 60 ] && backoff=1
    say "agent exited with status $agent_status; restarting in $backoff s"
    if [ "$PLINTH_DEBUG" = 1 ]; then
      console_shell "debug shell (exit it to restart the agent)"
    fi
    sleep "$backoff"
    backoff=$((backoff * 2))
    [ "$backoff" -gt 60 ] && backoff=60
  done
}

main
# Not reached; PID 1 must not exit.
idle_forever
`;

export const DHCP_EVENT_SCRIPT = `#!/bin/sh
# udhcpc event handler of the Plinth installer: applies a DHCPv4 lease with iproute2 and
# keeps /etc/resolv.conf in step with the leases of all interfaces. udhcpc passes the
# lease in the environment (ip, mask as a prefix length, router, dns, domain, search,
# mtu, staticroutes).

NET=/run/plinth/net
mkdir -p "$NET"

write_resolv_conf() {
  search=$(cat "$NET"/*.search 2>/dev/null | tr -s ' ' | tr ' ' '\\n' | awk 'NF && !seen[$0]++' | tr '\\n' ' ')
  {
    echo "# written by the Plinth installer from DHCP leases"
    [ -n "$search" ] && echo "search $search"
    cat "$NET"/*.dns 2>/dev/null | awk 'NF && !seen[$0]++ { print "nameserver " $0 }'
  } > /etc/resolv.conf.new
  mv /etc/resolv.conf.new /etc/resolv.conf
}

case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface" scope global 2>/dev/null
    ip link set dev "$interface" up
    rm -f "$NET/$interface.dns" "$NET/$interface.search" "$NET/$interface.bound"
    write_resolv_conf
    ;;
  bound|renew)
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    if [ "$1" = bound ]; then
      ip -4 addr flush dev "$interface" scope global 2>/dev/null
      while ip -4 route del default dev "$interface" 2>/dev/null; do :; done
    fi
    ip -4 addr replace "$ip/$mask" broadcast "\${broadcast:-+}" dev "$interface"
    # One metric per interface, so that several leases can each have a default route.
    metric=$(( 100 + $(cat "/sys/class/net/$interface/ifindex") ))
    if [ -n "$staticroutes" ]; then
      # RFC 3442: with classless static routes present, the router option is ignored.
      set -- $staticroutes
      while [ $# -ge 2 ]; do
        if [ "$2" = 0.0.0.0 ]; then
          ip -4 route replace "$1" dev "$interface" metric "$metric"
        else
          ip -4 route replace "$1" via "$2" dev "$interface" metric "$metric" onlink
        fi
        shift 2
      done
    else
      for gateway in $router; do
        ip -4 route replace default via "$gateway" dev "$interface" metric "$metric" onlink
        break
      done
    fi
    rm -f "$NET/$interface.dns" "$NET/$interface.search"
    for server in $dns; do echo "$server" >> "$NET/$interface.dns"; done
    [ -n "$search$domain" ] && echo "$search $domain" > "$NET/$interface.search"
    write_resolv_conf
    # Read by /init: the lease is applied (address, routes and DNS).
    echo "$ip" > "$NET/$interface.bound"
    ;;
  leasefail|nak)
    ;;
esac
exit 0
`;

/**
 * dhcpcd in the installer does IPv6 only; udhcpc and its handler own IPv4, resolv.conf and the
 * host name, so dhcpcd runs no hooks. SLAAC addresses are EUI-64 (`hwaddr`), the same the
 * kernel would form, so they tell which card they belong to.
 */
export const DHCPCD_CONF = `# dhcpcd in the Plinth installer: router advertisements, SLAAC and DHCPv6 only.
ipv6only
slaac hwaddr
script /bin/true
`;

/** reboot and poweroff without an init system to ask: sync, then act at once. */
export const POWER_COMMANDS: Record<string, string> = {
  '/usr/local/sbin/reboot': '#!/bin/sh\n# The installer has no service manager to stop: sync and reboot at once.\nsync\nexec busybox reboot -f\n',
  '/usr/local/sbin/poweroff': '#!/bin/sh\n# The installer has no service manager to stop: sync and power off at once.\nsync\nexec busybox poweroff -f\n',
};

/** Every file Plinth adds to the root filesystem, with its mode. */
export function installerRootFiles(): { path: string; mode: number; content: string }[] {
  return [
    { path: '/init', mode: 0o755, content: INIT_SCRIPT },
    { path: DHCP_EVENT_PATH, mode: 0o755, content: DHCP_EVENT_SCRIPT },
    { path: DHCPCD_CONF_PATH, mode: 0o644, content: DHCPCD_CONF },
    ...Object.entries(POWER_COMMANDS).map(([path, content]) => ({ path, mode: 0o755, content })),
    { path: '/etc/hostname', mode: 0o644, content: 'plinth-installer\n' },
    { path: '/etc/resolv.conf', mode: 0o644, content: '# written by the Plinth installer from DHCP leases\n' },
    { path: '/etc/fstab', mode: 0o644, content: '# the installer runs from memory; nothing to mount from disk\n' },
  ];
}
