import type { Store } from '../store/database.js';
import type { Clock } from '../core/clock.js';
import type { Config } from '../config/schema.js';
import type { InventoryService } from '../inventory/service.js';
import type { LifecycleEngine } from '../lifecycle/engine.js';
import type { TokenService, Role } from '../auth/tokens.js';
import type { Actor } from '../inventory/machine.js';
import type { ApplianceService } from '../appliances/service.js';
import type { Enlister } from '../appliances/enlist.js';
import type { PowerService } from '../power/service.js';
import type { DeployService } from '../deploy/service.js';
import type { ImageStore } from '../images/store.js';
import type { TemplateStore } from '../deploy/template-store.js';

/** Everything route handlers may use; built once by the composition root. */
export interface AppServices {
  config: Config;
  store: Store;
  clock: Clock;
  inventory: InventoryService;
  engine: LifecycleEngine;
  tokens: TokenService;
  appliances: ApplianceService;
  enlister: Enlister;
  power: PowerService;
  deploy: DeployService;
  images: ImageStore;
  templates: TemplateStore;
}

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
