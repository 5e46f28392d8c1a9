import type { BuiltinKind } from '../kinds.js';

/**
 * Debian installer preseed. Each answer is one line, `owner question type value`, continued
 * with a trailing backslash; values must hold no other backslash, which is why shell words are
 * quoted with `shell_quote` (it never writes one). The network answers repeat what the iPXE
 * script put on the kernel command line: the installer configures its network before it can
 * fetch this file, and the installed system takes its settings from these.
 */

const PRESEED = `# Plinth: Debian installer preseed for {{ machine.name | line }} (run {{ run.id | line }}).
{% include 'localization' -%}
{% include 'network' -%}
{% include 'mirror' -%}
{% include 'users' -%}
{% include 'storage' -%}
{% include 'packages' -%}
{% include 'bootloader' -%}
{% include 'late-command' -%}
d-i finish-install/reboot_in_progress note
`;

const LOCALIZATION = `d-i debian-installer/locale string {{ os.locale | preseed }}
d-i keyboard-configuration/xkb-keymap select {{ os.keyboard | preseed }}
d-i time/zone string {{ os.timezone | preseed }}
d-i clock-setup/utc boolean true
d-i clock-setup/ntp boolean true
`;

const NETWORK = `d-i netcfg/choose_interface select {% if network.primary %}{{ network.primary.mac | preseed }}{% else %}auto{% endif %}
d-i netcfg/get_hostname string {{ hostname | preseed }}
d-i netcfg/get_domain string{% if domain %} {{ domain | preseed }}{% endif %}
d-i netcfg/hostname string {{ hostname | preseed }}
{% if network.static -%}
d-i netcfg/disable_autoconfig boolean true
d-i netcfg/get_ipaddress string {{ network.static.address | preseed }}
d-i netcfg/get_netmask string {{ network.static.netmask | preseed }}
{% if network.static.gateway -%}
d-i netcfg/get_gateway string {{ network.static.gateway | preseed }}
{% else -%}
d-i netcfg/get_gateway string
d-i netcfg/no_default_route boolean true
{% endif -%}
d-i netcfg/get_nameservers string {{ network.static.dns | join: ' ' | preseed }}
d-i netcfg/confirm_static boolean true
{% endif -%}
`;

const MIRROR = `{% assign mirror = os.mirror | default: 'http://deb.debian.org/debian' -%}
{% assign protocol = mirror | url_scheme -%}
d-i mirror/country string manual
d-i mirror/protocol string {{ protocol | preseed }}
d-i mirror/{{ protocol | preseed }}/hostname string {{ mirror | url_host | preseed }}
d-i mirror/{{ protocol | preseed }}/directory string {{ mirror | url_path | preseed }}
d-i mirror/{{ protocol | preseed }}/proxy string
d-i mirror/suite string {{ os.suite | default: 'bookworm' | preseed }}
`;

// No root login and a locked password for the default user: access is by SSH key only.
const USERS = `d-i passwd/root-login boolean false
d-i passwd/make-user boolean true
d-i passwd/user-fullname string
d-i passwd/username string {{ os.user | preseed }}
d-i passwd/user-password-crypted password !
`;

// The chosen disk by its WWN link when it has one: sda and sdb may swap between boots.
const STORAGE = `{% if disk -%}
d-i partman-auto/disk string {{ disk.stablePath | preseed }}
{% endif -%}
d-i partman-auto/method string regular
d-i partman-auto/choose_recipe select atomic
d-i partman-lvm/device_remove_lvm boolean true
d-i partman-md/device_remove_md boolean true
d-i partman-lvm/confirm boolean true
d-i partman-lvm/confirm_nooverwrite boolean true
d-i partman-partitioning/confirm_write_new_label boolean true
d-i partman/choose_partition select finish
d-i partman/confirm boolean true
d-i partman/confirm_nooverwrite boolean true
`;

// curl: the completion report runs it inside the installed system.
const PACKAGES = `tasksel tasksel/first multiselect standard, ssh-server
d-i pkgsel/include string curl{% for package in os.packages %} {{ package | preseed }}{% endfor %}
d-i pkgsel/upgrade select none
popularity-contest popularity-contest/participate boolean false
`;

const BOOTLOADER = `d-i grub-installer/only_debian boolean true
d-i grub-installer/with_other_os boolean false
d-i grub-installer/bootdev string {% if disk %}{{ disk.stablePath | preseed }}{% else %}default{% endif %}
`;

// One question holds the whole late command, so its parts are snippets that each write
// complete shell commands ending in a semicolon and a continuation backslash.
const LATE_COMMAND = `d-i preseed/late_command string \\
    echo {{ os.user | append: ' ALL=(ALL) NOPASSWD:ALL' | shell_quote | preseed }} > /target/etc/sudoers.d/90-plinth; \\
    chmod 0440 /target/etc/sudoers.d/90-plinth; \\
{% include 'ssh-keys' -%}
{% include 'report-completion' -%}
`;

const SSH_KEYS = `{% assign ssh_dir = '/home/' | append: os.user | append: '/.ssh' -%}
    mkdir -p /target{{ ssh_dir | shell_word | preseed }}; \\
    : > /target{{ ssh_dir | shell_word | preseed }}/authorized_keys; \\
{% for key in ssh.authorizedKeys -%}
    echo {{ key | shell_quote | preseed }} >> /target{{ ssh_dir | shell_word | preseed }}/authorized_keys; \\
{% endfor -%}
    chmod 0700 /target{{ ssh_dir | shell_word | preseed }}; \\
    chmod 0600 /target{{ ssh_dir | shell_word | preseed }}/authorized_keys; \\
    in-target chown -R {{ os.user | shell_word | preseed }}:{{ os.user | shell_word | preseed }} {{ ssh_dir | shell_word | preseed }}; \\
{% if ssh.rootLogin -%}
    mkdir -p /target/root/.ssh; \\
    cp /target{{ ssh_dir | shell_word | preseed }}/authorized_keys /target/root/.ssh/authorized_keys; \\
    chmod 0700 /target/root/.ssh; \\
    chmod 0600 /target/root/.ssh/authorized_keys; \\
{% endif -%}
`;

// The last command of the late command: nothing continues it. A failed report does not stop the
// installation (the installer would wait at an error screen); the controller's deadline notices.
// curl retries refused connections, timeouts and 5xx answers; not --retry-all-errors, which the
// curl of older releases (Debian 10) does not know.
const REPORT_COMPLETION = `    in-target curl -fsS --max-time 30 --retry 60 --retry-delay 10 --retry-connrefused -X POST \\
      -H {{ 'Authorization: Bearer ' | append: token | shell_quote | preseed }} -H 'Content-Type: application/json' \\
      --data '{"event":"installed","source":"preseed"}' {{ controller.phoneHomeUrl | shell_quote | preseed }} || true
`;

export const PRESEED_TEMPLATES: BuiltinKind = {
  templates: { 'preseed.cfg': { contentType: 'text/plain; charset=utf-8', body: PRESEED } },
  snippets: {
    localization: LOCALIZATION,
    network: NETWORK,
    mirror: MIRROR,
    users: USERS,
    storage: STORAGE,
    packages: PACKAGES,
    bootloader: BOOTLOADER,
    'late-command': LATE_COMMAND,
    'ssh-keys': SSH_KEYS,
    'report-completion': REPORT_COMPLETION,
  },
  artifacts: ['preseed.cfg'],
  main: 'preseed.cfg',
  defaultContentType: 'text/plain; charset=utf-8',
};
