import { describe, expect, it } from 'vitest';
import { ACTIONS, FAILED_STATE, TRANSITIONS, allowedActions, findTransition } from './states.js';
import { STATES, TRANSITIONAL, isTransitional } from '../core/states.js';

describe('transition table', () => {
  it('uses only declared states and actions, each row with a reason', () => {
    for (const t of TRANSITIONS) {
      expect(STATES).toContain(t.from);
      expect(STATES).toContain(t.to);
      expect(ACTIONS).toContain(t.action);
      expect(t.why.length).toBeGreaterThan(10);
      expect(t.by.length).toBeGreaterThan(0);
    }
  });

  it('is deterministic: rows sharing action and source are told apart by a guard', () => {
    const seen = new Map<string, number>();
    for (const t of TRANSITIONS) seen.set(`${t.from}/${t.action}`, (seen.get(`${t.from}/${t.action}`) ?? 0) + 1);
    for (const [key, n] of seen) {
      if (n > 1) {
        const rows = TRANSITIONS.filter((t) => `${t.from}/${t.action}` === key);
        expect(rows.every((r) => r.when), key).toBe(true);
      }
    }
  });

  it('every state is reachable from enrolled and can be left', () => {
    const reach = new Set<string>(['enrolled']);
    let grew = true;
    while (grew) {
      grew = false;
      for (const t of TRANSITIONS) if (reach.has(t.from) && !reach.has(t.to)) (reach.add(t.to), (grew = true));
    }
    expect([...reach].sort()).toEqual([...STATES].sort());
    for (const s of STATES) expect(TRANSITIONS.some((t) => t.from === s), s).toBe(true);
  });

  it('every transitional state can fail, time out and be aborted into its failed state', () => {
    for (const s of TRANSITIONAL) {
      for (const action of ['fail', 'timeout', 'abort']) {
        const t = findTransition(s, action);
        expect(t, `${s} ${action}`).not.toBeNull();
        expect(t!.to).toBe(FAILED_STATE[s]);
      }
    }
  });

  // Every allowed transition, spelled out: [from, action, params, to].
  const allowed: [string, string, object, string][] = [
    ['enrolled', 'inspect', {}, 'inspecting'],
    ['available', 'inspect', {}, 'inspecting'],
    ['inspecting', 'installer-started', {}, 'inspect-wait'],
    ['inspect-wait', 'inspect-done', {}, 'available'],
    ['inspect-failed', 'retry', {}, 'inspecting'],
    ['inspect-failed', 'abort', {}, 'enrolled'],
    ['available', 'deploy', {}, 'deploying'],
    ['deployed', 'redeploy', {}, 'deploying'],
    ['deploying', 'installer-started', {}, 'deploy-wait'],
    ['deploy-wait', 'deploy-done', {}, 'deployed'],
    ['deploy-failed', 'retry', {}, 'deploying'],
    ['deploy-failed', 'abort', {}, 'available'],
    ['deployed', 'release', { wipe: 'quick' }, 'wiping'],
    ['deployed', 'release', { wipe: 'full' }, 'wiping'],
    ['deployed', 'release', { wipe: 'none' }, 'available'],
    ['available', 'wipe', {}, 'wiping'],
    ['enrolled', 'wipe', {}, 'wiping'],
    ['wiping', 'installer-started', {}, 'wipe-wait'],
    ['wipe-wait', 'wipe-done', {}, 'available'],
    ['wipe-failed', 'retry', {}, 'wiping'],
    ['wipe-failed', 'abort', {}, 'enrolled'],
    ['enrolled', 'retire', {}, 'retired'],
    ['available', 'retire', {}, 'retired'],
    ['inspect-failed', 'retire', {}, 'retired'],
    ['deploy-failed', 'retire', {}, 'retired'],
    ['wipe-failed', 'retire', {}, 'retired'],
    ['retired', 'unretire', {}, 'enrolled'],
    ['enrolled', 'boot-installer', {}, 'installer-booting'],
    ['available', 'boot-installer', {}, 'installer-booting'],
    ['deployed', 'boot-installer', {}, 'installer-booting'],
    ['installer-booting', 'installer-started', {}, 'installer'],
    ['installer', 'exit-installer', { exitTo: 'deployed' }, 'installer-exiting'],
    ['installer', 'exit-installer', { exitTo: 'available' }, 'available'],
    ['installer-failed', 'exit-installer', { exitTo: 'deployed' }, 'installer-exiting'],
    ['installer-failed', 'exit-installer', { exitTo: 'available' }, 'available'],
    ['installer', 'exit-installer', { exitTo: 'enrolled' }, 'enrolled'],
    ['installer-failed', 'exit-installer', { exitTo: 'enrolled' }, 'enrolled'],
    ['installer-exiting', 'exit-done', {}, 'deployed'],
    ['installer-failed', 'retire', {}, 'retired'],
    ['available', 'rescue', {}, 'rescue-booting'],
    ['deployed', 'rescue', {}, 'rescue-booting'],
    ['rescue-booting', 'installer-started', {}, 'rescue'],
    ['rescue', 'exit-rescue', { exitTo: 'deployed' }, 'deployed'],
    ['rescue', 'exit-rescue', { exitTo: 'available' }, 'available'],
    ['rescue-failed', 'exit-rescue', { exitTo: 'deployed' }, 'deployed'],
    ['rescue-failed', 'retire', {}, 'retired'],
  ];
  it.each(allowed)('%s --%s %j--> %s', (from, action, params, to) => {
    expect(findTransition(from, action, params)?.to).toBe(to);
  });

  const forbidden: [string, string][] = [
    ['enrolled', 'deploy'],
    ['enrolled', 'release'],
    ['inspecting', 'deploy'],
    ['inspect-wait', 'inspect'],
    ['available', 'release'],
    ['available', 'redeploy'],
    ['available', 'deploy-done'],
    ['deploying', 'deploy'],
    ['deployed', 'deploy'],
    ['deployed', 'wipe'],
    ['deployed', 'retire'],
    ['wiping', 'wipe'],
    ['retired', 'inspect'],
    ['retired', 'deploy'],
    ['inspect-failed', 'deploy'],
    ['deploy-failed', 'inspect'],
    ['available', 'abort'],
    ['deployed', 'abort'],
    ['available', 'retry'],
    ['enrolled', 'unretire'],
    ['enrolled', 'rescue'],
    ['installer', 'exit-rescue'],
    ['rescue', 'exit-installer'],
    ['installer-booting', 'exit-installer'],
    ['installer', 'exit-installer'],
    ['rescue', 'exit-rescue'],
    ['installer', 'exit-done'],
  ];
  it.each(forbidden)('%s refuses %s', (from, action) => {
    expect(findTransition(from, action, { wipe: 'quick' })).toBeNull();
  });

  it('marks the destructive actions', () => {
    const destructive = new Set(TRANSITIONS.filter((t) => t.destructive).map((t) => t.action));
    expect([...destructive].sort()).toEqual(['boot-installer', 'redeploy', 'release', 'retire', 'wipe']);
    // Rescue leaves the disks alone, so a protected machine may be rescued; booting the installer for automation may not.
    expect(findTransition('deployed', 'rescue')?.destructive).toBeUndefined();
    expect(findTransition('deployed', 'boot-installer')?.destructive).toBe(true);
    expect(findTransition('available', 'boot-installer')?.destructive).toBeUndefined();
  });

  it('lets only the controller time machines out, and never lets operators report installer progress', () => {
    for (const t of TRANSITIONS) {
      if (t.action === 'timeout') expect(t.by).toEqual(['system']);
      if (['installer-started', 'inspect-done', 'deploy-done', 'wipe-done', 'fail'].includes(t.action)) expect(t.by).not.toContain('operator');
    }
  });

  it('lists operator actions allowed from a state', () => {
    expect(allowedActions('available').sort()).toEqual(['boot-installer', 'deploy', 'inspect', 'rescue', 'retire', 'wipe']);
    expect(allowedActions('deployed').sort()).toEqual(['boot-installer', 'redeploy', 'release', 'rescue']);
    expect(allowedActions('installer').sort()).toEqual(['abort', 'exit-installer']);
    expect(allowedActions('rescue').sort()).toEqual(['abort', 'exit-rescue']);
    expect(allowedActions('installer-exiting', 'system').sort()).toEqual(['exit-done', 'fail', 'timeout']);
    expect(allowedActions('inspect-wait').sort()).toEqual(['abort']);
    expect(allowedActions('inspect-wait', 'agent').sort()).toEqual(['fail', 'inspect-done']);
    expect(isTransitional('deploy-wait')).toBe(true);
    expect(isTransitional('deployed')).toBe(false);
  });
});
