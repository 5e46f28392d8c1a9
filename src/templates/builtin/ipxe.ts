import type { BuiltinKind } from '../kinds.js';

/**
 * iPXE scripts that boot an OS's own installer, which then fetches its answer file (preseed,
 * kickstart, autoinstall seed) from the run's artifacts. Each retries loading kernel and initrd
 * with a growing pause, so a transient network failure does not strand the machine. `\${…}`
 * here is iPXE's own variable syntax, escaped from TypeScript.
 *
 * The installer configures its network before it can fetch its answer file, so the kernel
 * command line carries the NIC, host name and any static address.
 */

const RETRY = `set attempt:int32 0
:load
inc attempt
echo Plinth: {{ machine.name | ipxe }}: loading the installer (attempt \${attempt})
kernel \${kernel-url} initrd=\${initrd-name} \${args} || goto load-failed
initrd --name \${initrd-name} \${initrd-url} || goto load-failed
boot || goto load-failed
:load-failed
echo Plinth: loading the installer failed (attempt \${attempt}), retrying
iseq \${attempt} 20 && goto give-up ||
sleep \${attempt}
goto load
:give-up
{% include 'give-up' -%}
`;

// Arguments after "---" are also given to the installed system's kernel by the Debian installer.
const DEBIAN_INSTALLER = `#!ipxe
# Plinth: {{ machine.name | line }} boots the Debian installer (run {{ run.id | line }}).
{% assign arch = machine.architecture | debian_arch -%}
{% assign mirror = os.mirror | default: 'http://deb.debian.org/debian' -%}
{% capture netboot %}{{ mirror | ipxe }}/dists/{{ os.suite | default: 'bookworm' | ipxe }}/main/installer-{{ arch | ipxe }}/current/images/netboot/debian-installer/{{ arch | ipxe }}{% endcapture -%}
{% capture extra %}{% include 'kernel-args' %}{% endcapture -%}
set kernel-url {% if os.kernelUrl %}{{ os.kernelUrl | ipxe }}{% else %}{{ netboot | ipxe }}/linux{% endif %}
set initrd-url {% if os.initrdUrl %}{{ os.initrdUrl | ipxe }}{% else %}{{ netboot | ipxe }}/initrd.gz{% endif %}
set initrd-name initrd.gz
set args auto=true priority=critical url={{ controller.artifactsUrl | cmdline }}/preseed/preseed.cfg
set args \${args} netcfg/choose_interface={% if network.primary %}{{ network.primary.mac | cmdline }}{% else %}auto{% endif %} hostname={{ hostname | cmdline }}{% if domain %} domain={{ domain | cmdline }}{% endif %}
{% if network.static -%}
set args \${args} netcfg/disable_autoconfig=true netcfg/get_ipaddress={{ network.static.address | cmdline }} netcfg/get_netmask={{ network.static.netmask | cmdline }}{% if network.static.gateway %} netcfg/get_gateway={{ network.static.gateway | cmdline }}{% endif %}{% if network.static.dns.size > 0 %} netcfg/get_nameservers={{ network.static.dns.first | cmdline }}{% endif %} netcfg/confirm_static=true
{% endif -%}
set args \${args} --- {{ extra | strip | cmdline }}
${RETRY}`;

// Without os.mirror: the Fedora 41 release tree for the machine's architecture.
const ANACONDA = `#!ipxe
# Plinth: {{ machine.name | line }} boots Anaconda (run {{ run.id | line }}).
{% capture fedora %}https://dl.fedoraproject.org/pub/fedora/linux/releases/41/Everything/{{ machine.architecture }}/os{% endcapture -%}
{% assign tree = os.mirror | default: fedora -%}
{% capture extra %}{% include 'kernel-args' %}{% endcapture -%}
set kernel-url {% if os.kernelUrl %}{{ os.kernelUrl | ipxe }}{% else %}{{ tree | ipxe }}/images/pxeboot/vmlinuz{% endif %}
set initrd-url {% if os.initrdUrl %}{{ os.initrdUrl | ipxe }}{% else %}{{ tree | ipxe }}/images/pxeboot/initrd.img{% endif %}
set initrd-name initrd.img
set args inst.repo={{ tree | cmdline }} inst.ks={{ controller.artifactsUrl | cmdline }}/kickstart/ks.cfg inst.text
{% if network.static -%}
set args \${args} ip={{ network.static.address | cmdline }}::{{ network.static.gateway | cmdline }}:{{ network.static.netmask | cmdline }}:{{ hostname | cmdline }}:{{ network.primary.name | cmdline }}:none{% for server in network.static.dns %} nameserver={{ server | cmdline }}{% endfor %}
{% else -%}
set args \${args} ip=dhcp
{% endif -%}
set args \${args} {{ extra | strip | cmdline }}
${RETRY}`;

// The live server ISO's kernel and initrd (by default Ubuntu 24.04's netboot files, which match
// its current live server ISO); the installer downloads the ISO itself (url=) and reads the
// NoCloud seed; cloud-config-url=/dev/null stops it from fetching the ISO a second time.
const UBUNTU_AUTOINSTALL = `#!ipxe
# Plinth: {{ machine.name | line }} boots the Ubuntu Server installer (run {{ run.id | line }}).
{% assign arch = machine.architecture | debian_arch -%}
{% capture netboot %}https://releases.ubuntu.com/24.04/netboot/{{ arch }}{% endcapture -%}
{% capture iso %}https://releases.ubuntu.com/24.04/ubuntu-24.04.3-live-server-{{ arch }}.iso{% endcapture -%}
{% capture extra %}{% include 'kernel-args' %}{% endcapture -%}
set kernel-url {% if os.kernelUrl %}{{ os.kernelUrl | ipxe }}{% else %}{{ netboot | ipxe }}/linux{% endif %}
set initrd-url {% if os.initrdUrl %}{{ os.initrdUrl | ipxe }}{% else %}{{ netboot | ipxe }}/initrd{% endif %}
set initrd-name initrd
set args url={{ os.isoUrl | default: iso | cmdline }} autoinstall ds=nocloud-net;s={{ controller.artifactsUrl | cmdline }}/autoinstall/ cloud-config-url=/dev/null
{% if network.static -%}
set args \${args} ip={{ network.static.address | cmdline }}::{{ network.static.gateway | cmdline }}:{{ network.static.netmask | cmdline }}:{{ hostname | cmdline }}:{{ network.primary.name | cmdline }}:none:{{ network.static.dns[0] | default: '' | cmdline }}:{{ network.static.dns[1] | default: '' | cmdline }}
{% else -%}
set args \${args} ip=dhcp
{% endif -%}
set args \${args} {{ extra | strip | cmdline }}
${RETRY}`;

// The console, and the profile's or the deploy's kernelArgs: the Debian installer gives what
// follows "---" to the installed system as well; kickstart and autoinstall add kernelArgs to
// the installed system's boot loader themselves.
const KERNEL_ARGS = `{{ os.console | cmdline }}{% if os.kernelArgs != '' %} {{ os.kernelArgs | cmdline }}{% endif %}`;

const GIVE_UP = `echo Plinth: could not load the installer, rebooting in 30 seconds
sleep 30
reboot
`;

export const IPXE_TEMPLATES: BuiltinKind = {
  templates: {
    'debian-installer': { contentType: 'text/plain; charset=utf-8', body: DEBIAN_INSTALLER },
    anaconda: { contentType: 'text/plain; charset=utf-8', body: ANACONDA },
    'ubuntu-autoinstall': { contentType: 'text/plain; charset=utf-8', body: UBUNTU_AUTOINSTALL },
  },
  snippets: { 'kernel-args': KERNEL_ARGS, 'give-up': GIVE_UP },
  artifacts: [],
  defaultContentType: 'text/plain; charset=utf-8',
};
