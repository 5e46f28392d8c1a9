import type { BuiltinKind } from '../kinds.js';

/**
 * Anaconda kickstart (Fedora, RHEL and rebuilds). Kickstart parses its command lines like a
 * shell, so quoted arguments use `json` (a double-quoted string) or `shell_quote`.
 */

const KICKSTART = `# Plinth: Anaconda kickstart for {{ machine.name | line }} (run {{ run.id | line }}).
text
{% include 'localization' -%}
{% include 'source' -%}
{% include 'network' -%}
{% include 'users' -%}
{% include 'storage' -%}
firstboot --disable
reboot
{% include 'packages' -%}
{% include 'post-install' -%}
{% include 'ssh-keys' -%}
{% include 'report-completion' -%}
`;

const LOCALIZATION = `lang {{ os.locale | kickstart }}
keyboard --vckeymap={{ os.keyboard | kickstart }} --xlayouts={{ os.keyboard | kickstart }}
timezone {{ os.timezone | kickstart }} --utc
`;

// Without a mirror, Anaconda installs from the tree its kernel was given (inst.repo).
const SOURCE = `{% if os.mirror -%}
url --url={{ os.mirror | kickstart }}
{% endif -%}
`;

// Matched by MAC: the names Anaconda gives NICs need not be the names seen at inspection.
const NETWORK = `{% for nic in network.nics -%}
{% if nic.static -%}
network --device={{ nic.mac | kickstart }} --bootproto=static --ip={{ nic.static.address | kickstart }} --netmask={{ nic.static.netmask | kickstart }}{% if nic.static.gateway %} --gateway={{ nic.static.gateway | kickstart }}{% endif %}{% if nic.static.dns.size > 0 %} --nameserver={{ nic.static.dns | join: ',' | kickstart }}{% endif %}{% if nic.static.search.size > 0 %} --ipv4-dns-search={{ nic.static.search | join: ',' | kickstart }}{% endif %} --onboot=yes{% if nic.primary %} --activate{% endif %}
{% else -%}
network --device={{ nic.mac | kickstart }} --bootproto=dhcp --onboot=yes{% if nic.primary %} --activate{% endif %}
{% endif -%}
{% endfor -%}
network --hostname={% if fqdn %}{{ fqdn | kickstart }}{% else %}{{ hostname | kickstart }}{% endif %}
`;

const USERS = `rootpw --lock
user --name={{ os.user | kickstart }} --groups=wheel --lock
`;

// A %post section rather than sshkey commands: kickstart takes one sshkey per user, and a
// machine may be given several keys. restorecon: files written here need their SELinux labels.
const SSH_KEYS = `%post --erroronfail
install -d -m 0700 -o {{ os.user | shell_word }} -g {{ os.user | shell_word }} /home/{{ os.user | shell_word }}/.ssh
printf '%s\\n' {{ ssh.authorizedKeys | shell_quote }} > /home/{{ os.user | shell_word }}/.ssh/authorized_keys
chown {{ os.user | shell_word }}:{{ os.user | shell_word }} /home/{{ os.user | shell_word }}/.ssh/authorized_keys
chmod 0600 /home/{{ os.user | shell_word }}/.ssh/authorized_keys
{% if ssh.rootLogin -%}
install -d -m 0700 /root/.ssh
cp /home/{{ os.user | shell_word }}/.ssh/authorized_keys /root/.ssh/authorized_keys
chmod 0600 /root/.ssh/authorized_keys
{% endif -%}
restorecon -R /home/{{ os.user | shell_word }}/.ssh{% if ssh.rootLogin %} /root/.ssh{% endif %} || true
%end
`;

// The chosen disk by its WWN link when it has one: sda and sdb may swap between boots.
const STORAGE = `zerombr
{% if disk -%}
ignoredisk --only-use={{ disk.stablePath | kickstart }}
clearpart --all --initlabel --drives={{ disk.stablePath | kickstart }}
{% else -%}
clearpart --all --initlabel
{% endif -%}
autopart
{% capture append %}{{ os.console }} {{ os.kernelArgs }}{% endcapture -%}
bootloader --append={{ append | strip | kickstart }}
`;

const PACKAGES = `%packages
@^minimal-environment
openssh-server
{% for package in os.packages -%}
{{ package | kickstart }}
{% endfor -%}
%end
`;

// The default user's password is locked, so sudo must not ask for one.
const POST_INSTALL = `%post --erroronfail
echo {{ os.user | append: ' ALL=(ALL) NOPASSWD:ALL' | shell_quote }} > /etc/sudoers.d/90-plinth
chmod 0440 /etc/sudoers.d/90-plinth
%end
`;

// Outside the chroot: the installer always has curl, the installed system may not. A failed
// report does not fail the installation; the controller's deadline notices instead.
// curl retries refused connections, timeouts and 5xx answers; not --retry-all-errors, which the
// curl of older installers (RHEL 8, Ubuntu 20.04) does not know.
const REPORT_COMPLETION = `%post --nochroot
# Plinth: tell the controller the installation of {{ machine.name | line }} finished (run {{ run.id | line }}).
curl -fsS --max-time 30 --retry 60 --retry-delay 10 --retry-connrefused -X POST \\
  -H {{ 'Authorization: Bearer ' | append: token | shell_quote }} -H 'Content-Type: application/json' \\
  --data '{"event":"installed","source":"kickstart"}' {{ controller.phoneHomeUrl | shell_quote }} \\
  || echo "Plinth: could not report to the controller" >&2
%end
`;

export const KICKSTART_TEMPLATES: BuiltinKind = {
  templates: { 'ks.cfg': { contentType: 'text/plain; charset=utf-8', body: KICKSTART } },
  snippets: {
    localization: LOCALIZATION,
    source: SOURCE,
    network: NETWORK,
    users: USERS,
    'ssh-keys': SSH_KEYS,
    storage: STORAGE,
    packages: PACKAGES,
    'post-install': POST_INSTALL,
    'report-completion': REPORT_COMPLETION,
  },
  artifacts: ['ks.cfg'],
  main: 'ks.cfg',
  defaultContentType: 'text/plain; charset=utf-8',
};
