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
echo Plinth: {{ machine.name }}: loading the installer (attempt \${attempt})
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
# Plinth: {{ machine.name }} boots the Debian installer (run {{ run.id }}).
{% assign arch = machine.architecture | debian_arch -%}
{% assign mirror = os.mirror | default: 'http://deb.debian.org/debian' -%}
{% capture netboot %}{{ mirror }}/dists/{{ os.suite | default: 'bookworm' }}/main/installer-{{ arch }}/current/images/netboot/debian-installer/{{ arch }}{% endcapture -%}
{% capture extra %}{% include 'kernel-args' %}{% endcapture -%}
set kernel-url {% if os.kernelUrl %}{{ os.kernelUrl }}{% else %}{{ netboot }}/linux{% endif %}
set initrd-url {% if os.initrdUrl %}{{ os.initrdUrl }}{% else %}{{ netboot }}/initrd.gz{% endif %}
set initrd-name initrd.gz
set args auto=true priority=critical url={{ controller.artifactsUrl }}/preseed/preseed.cfg
set args \${args} netcfg/choose_interface={% if network.primary %}{{ network.primary.mac }}{% else %}auto{% endif %} hostname={{ hostname }}{% if domain %} domain={{ domain }}{% endif %}
{% if network.static -%}
set args \${args} netcfg/disable_autoconfig=true netcfg/get_ipaddress={{ network.static.address }} netcfg/get_netmask={{ network.static.netmask }}{% if network.static.gateway %} netcfg/get_gateway={{ network.static.gateway }}{% endif %}{% if network.static.dns.size > 0 %} netcfg/get_nameservers={{ network.static.dns.first }}{% endif %} netcfg/confirm_static=true
{% endif -%}
set args \${args} --- {{ extra | strip }}
${RETRY}`;

const ANACONDA = `#!ipxe
# Plinth: {{ machine.name }} boots Anaconda (run {{ run.id }}).
{% assign tree = os.mirror | required: 'os.mirror (the installation tree URL)' -%}
{% capture extra %}{% include 'kernel-args' %}{% endcapture -%}
set kernel-url {% if os.kernelUrl %}{{ os.kernelUrl }}{% else %}{{ tree }}/images/pxeboot/vmlinuz{% endif %}
set initrd-url {% if os.initrdUrl %}{{ os.initrdUrl }}{% else %}{{ tree }}/images/pxeboot/initrd.img{% endif %}
set initrd-name initrd.img
set args inst.repo={{ tree }} inst.ks={{ controller.artifactsUrl }}/kickstart/ks.cfg inst.text
{% if network.static -%}
set args \${args} ip={{ network.static.address }}::{{ network.static.gateway }}:{{ network.static.netmask }}:{{ hostname }}:{{ network.primary.name }}:none{% for server in network.static.dns %} nameserver={{ server }}{% endfor %}
{% else -%}
set args \${args} ip=dhcp
{% endif -%}
set args \${args} {{ extra | strip }}
${RETRY}`;

// The live server ISO's kernel and initrd; the installer downloads the ISO itself (url=) and
// reads the NoCloud seed; cloud-config-url=/dev/null stops it from fetching the ISO a second time.
const UBUNTU_AUTOINSTALL = `#!ipxe
# Plinth: {{ machine.name }} boots the Ubuntu Server installer (run {{ run.id }}).
{% capture extra %}{% include 'kernel-args' %}{% endcapture -%}
set kernel-url {{ os.kernelUrl | required: 'os.kernelUrl (casper/vmlinuz of the live server ISO)' }}
set initrd-url {{ os.initrdUrl | required: 'os.initrdUrl (casper/initrd of the live server ISO)' }}
set initrd-name initrd
set args url={{ os.isoUrl | required: 'os.isoUrl (the live server ISO)' }} autoinstall ds=nocloud-net;s={{ controller.artifactsUrl }}/autoinstall/ cloud-config-url=/dev/null
{% if network.static -%}
set args \${args} ip={{ network.static.address }}::{{ network.static.gateway }}:{{ network.static.netmask }}:{{ hostname }}:{{ network.primary.name }}:none:{{ network.static.dns[0] | default: '' }}:{{ network.static.dns[1] | default: '' }}
{% else -%}
set args \${args} ip=dhcp
{% endif -%}
set args \${args} {{ extra | strip }}
${RETRY}`;

const KERNEL_ARGS = `{{ os.console }}`;

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
