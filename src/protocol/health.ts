import { Type, type Static } from 'typebox';

/**
 * The parameters of a health run (docs/health.md): how long each benchmark runs, and which
 * disks fio reads. The API's `inspect` action takes them as `health`; the health module
 * fills in the defaults and turns them into the script the agent runs.
 */
export const HealthParamsSchema = Type.Object(
  {
    cpuSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 600, description: 'sysbench cpu run time, per logical CPU and for all together (default 10)' })),
    memorySeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 600, description: 'sysbench memory run time, one thread and all (default 5)' })),
    diskSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 600, description: 'fio run time per disk and mode (read 1M, randread 4k), read-only; 0: no disk check (default 10)' })),
    disks: Type.Optional(
      Type.Array(Type.String({ pattern: '^[a-z][a-z0-9]{0,31}$' }), { maxItems: 64, description: "the disks fio reads (kernel names: sda, nvme0n1); default every disk the installer sees" }),
    ),
  },
  { additionalProperties: false },
);
export type HealthParamsInput = Static<typeof HealthParamsSchema>;
