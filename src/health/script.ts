import { validation } from '../core/errors.js';
import type { Script } from '../protocol/agent.js';
import type { HealthParamsInput } from '../protocol/health.js';

/**
 * Health checks (eDeploy's health mode, redhat-cip/hardware's benchmarks), run on a machine
 * in the installer as an operator script of Plinth's own: Debian's sysbench measures the CPU
 * (each logical CPU alone, pinned with taskset, then all of them at once) and the memory
 * (one thread, then one per logical CPU), and fio measures each disk by **reading** it
 * (`--readonly`: fio refuses to write; O_DIRECT sequential 1 MiB and random 4 KiB reads), so
 * a health check never changes a disk, deployed or not. The raw outputs are left as files
 * (cpu.txt, memory.txt, disk.txt, cpuinfo.txt); the controller reads the figures out of
 * them (parse.ts). The installer must carry sysbench and fio: build it with
 * `plinth installer build --package sysbench --package fio` (docs/health.md).
 */
export const HEALTH_SCRIPT_NAME = 'plinth-health';

/** A health run's parameters with the defaults filled in (the API's are protocol/health.ts). */
export interface HealthParams {
  /** sysbench cpu run time, per logical CPU and for all of them together. */
  cpuSeconds: number;
  /** sysbench memory run time, for one thread and for all. */
  memorySeconds: number;
  /** fio run time per disk and mode (read 1M, randread 4k); 0: no disk check. */
  diskSeconds: number;
  /** The disks to read (kernel names: sda, nvme0n1); absent: every disk the installer sees. */
  disks?: string[];
}

export const HEALTH_DEFAULTS: HealthParams = { cpuSeconds: 10, memorySeconds: 5, diskSeconds: 10 };
const DISK_NAME = /^[a-z][a-z0-9]{0,31}$/;

/** The parameters of a health run, defaults filled in; bad ones refused, naming the field. */
export function healthParams(input: HealthParamsInput = {}): HealthParams {
  const p = { ...HEALTH_DEFAULTS, ...Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) } as HealthParams;
  const whole = (field: keyof HealthParams, min: number, max: number) => {
    const v = p[field];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw validation(field, `must be a whole number of seconds from ${min} to ${max}`);
  };
  whole('cpuSeconds', 1, 600);
  whole('memorySeconds', 1, 600);
  whole('diskSeconds', 0, 600);
  if (p.disks !== undefined) {
    if (!Array.isArray(p.disks) || p.disks.length > 64) throw validation('disks', 'must be a list of at most 64 disk names');
    p.disks.forEach((d, i) => {
      if (typeof d !== 'string' || !DISK_NAME.test(d)) throw validation(`disks[${i}]`, `'${String(d)}' is not a disk's kernel name (sda, nvme0n1)`);
    });
  }
  return p;
}

/** The longest a health run's script may take: every measurement, with room for slow starts. */
export function healthTimeoutSeconds(p: HealthParams, logicalCpus = 256, disks = 16): number {
  return Math.min(86_400, 300 + (logicalCpus + 1) * p.cpuSeconds * 2 + 2 * p.memorySeconds * 2 + disks * 2 * p.diskSeconds * 2);
}

/** The script the agent runs (a POSIX shell script; the figures are baked in, nothing comes from the environment but the output directory). */
export function healthScript(p: HealthParams): Script {
  const disks = p.disks === undefined ? '' : p.disks.join(' ');
  const content = `#!/bin/sh
# Plinth health check: sysbench cpu and memory, fio reads of each disk (read-only).
set -u
CPU_SECONDS=${p.cpuSeconds}
MEMORY_SECONDS=${p.memorySeconds}
DISK_SECONDS=${p.diskSeconds}
DISKS="${disks}"
out="$PLINTH_OUTPUT_DIR"
for tool in sysbench fio taskset nproc; do
  command -v "$tool" >/dev/null 2>&1 || { echo "health: $tool is not in this installer (plinth installer build --package sysbench --package fio)"; exit 2; }
done
cp /proc/cpuinfo "$out/cpuinfo.txt"
n=$(nproc --all)
: > "$out/cpu.txt"
i=0
while [ "$i" -lt "$n" ]; do
  echo "== cpu $i" >> "$out/cpu.txt"
  taskset -c "$i" sysbench cpu --threads=1 --time="$CPU_SECONDS" --cpu-max-prime=15000 run >> "$out/cpu.txt" 2>&1 || { echo "health: sysbench cpu failed on cpu $i"; exit 3; }
  i=$((i + 1))
done
echo "== cpu all $n" >> "$out/cpu.txt"
sysbench cpu --threads="$n" --time="$CPU_SECONDS" --cpu-max-prime=15000 run >> "$out/cpu.txt" 2>&1 || { echo "health: sysbench cpu failed on all cpus"; exit 3; }
echo "health: cpu measured ($n logical)"
: > "$out/memory.txt"
echo "== memory 0" >> "$out/memory.txt"
taskset -c 0 sysbench memory --threads=1 --time="$MEMORY_SECONDS" --memory-block-size=1M --memory-total-size=100T run >> "$out/memory.txt" 2>&1 || { echo "health: sysbench memory failed"; exit 3; }
echo "== memory all $n" >> "$out/memory.txt"
sysbench memory --threads="$n" --time="$MEMORY_SECONDS" --memory-block-size=1M --memory-total-size=100T run >> "$out/memory.txt" 2>&1 || { echo "health: sysbench memory failed"; exit 3; }
echo "health: memory measured"
: > "$out/disk.txt"
if [ "$DISK_SECONDS" -gt 0 ]; then
  if [ -z "$DISKS" ]; then
    # Whole disks with a size; never RAM disks, zram or network block devices.
    DISKS=$(lsblk -b -d -n -o NAME,TYPE,SIZE | awk '$2 == "disk" && $3 > 0 && $1 !~ /^(ram|zram|nbd)/ { print $1 }')
  fi
  for d in $DISKS; do
    [ -b "/dev/$d" ] || { echo "health: /dev/$d is not a block device"; exit 4; }
    for job in "read 1M" "randread 4k"; do
      set -- $job
      echo "== disk $d $1 $2" >> "$out/disk.txt"
      # --readonly: fio refuses any write; O_DIRECT so the page cache is not measured.
      fio --name="$d" --filename="/dev/$d" --readonly --rw="$1" --bs="$2" --direct=1 --ioengine=libaio --iodepth=32 \\
        --runtime="$DISK_SECONDS" --time_based --output-format=json >> "$out/disk.txt" 2>&1 || { echo "health: fio $1 $2 failed on $d"; exit 3; }
    done
    echo "health: disk $d measured"
  done
fi
`;
  return { name: HEALTH_SCRIPT_NAME, content, timeoutSeconds: healthTimeoutSeconds(p) };
}
