import type {
  FastifyBaseLogger,
  FastifyInstance,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Store } from '../store/database.js';
import type { Clock } from '../core/clock.js';
import type { Config } from '../config/schema.js';
import type { InventoryService } from '../inventory/service.js';
import type { Allocator } from '../inventory/allocation.js';
import type { LifecycleEngine } from '../lifecycle/engine.js';
import type { TokenService, Role } from '../auth/tokens.js';
import type { Actor } from '../inventory/machine.js';
import type { ApplianceService } from '../appliances/service.js';
import type { Enlister } from '../appliances/enlist.js';
import type { MachineImporter } from '../sources/machine-import.js';
import type { PowerService } from '../power/service.js';
import type { DeployService } from '../deploy/service.js';
import type { OperatorActions } from '../deploy/operator-actions.js';
import type { Holds } from '../deploy/holds.js';
import type { RunService } from '../runs/service.js';
import type { ImageStore } from '../images/store.js';
import type { TemplateStore } from '../deploy/template-store.js';
import type { EventLog } from '../events/service.js';
import type { WebhookService } from '../webhooks/service.js';

/** Who a controller is, as `GET /api/v1/controller` tells the CLI. */
export interface ControllerIdentity {
  id: string;
  version: string;
  database: 'sqlite' | 'postgres';
  dataDir: { path: string; id: string };
}

/** Everything route handlers may use; built once by the composition root. */
export interface AppServices {
  config: Config;
  identity: ControllerIdentity;
  store: Store;
  clock: Clock;
  inventory: InventoryService;
  allocator: Allocator;
  engine: LifecycleEngine;
  tokens: TokenService;
  appliances: ApplianceService;
  enlister: Enlister;
  importer: MachineImporter;
  power: PowerService;
  deploy: DeployService;
  actions: OperatorActions;
  holds: Holds;
  runs: RunService;
  images: ImageStore;
  templates: TemplateStore;
  events: EventLog;
  webhooks: WebhookService;
}

/**
 * The application as route modules see it: Fastify with the TypeBox type provider, so a
 * handler's `req.body`, `req.params`, `req.query` and `req.headers` are typed from the route's
 * schema and no route casts what the validator has already checked.
 */
export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression<RawServerDefault>,
  RawReplyDefaultExpression<RawServerDefault>,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

export interface Principal {
  tokenId: string;
  name: string;
  role: Role;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** Least role a route needs; `public` routes need no token. Default: reader for GET/HEAD, operator otherwise. */
    role?: Role | 'public';
  }
}

export const operatorActor = (p: Principal | null): Actor => ({ kind: 'operator', name: p ? p.name : 'anonymous' });
