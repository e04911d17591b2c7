import fs from 'node:fs';
import { randomHex } from '../random-hex';
import { ticksSinceBoot } from './process-group';

/**
 * The function processes alyx has started (running invocations and warm processes) and those
 * it ended lately, with when each ran: what an adopted orphan is attributed against.
 */

/**
 * Every process of an invocation inherits a tag in its environment, so what leaves its group
 * and keeps its environment is found by it.
 */
export const INVOCATION_VARIABLE = 'ALYX_INVOCATION';

/** A fresh tag for one invocation. */
export function newInvocationTag(): string {
  return randomHex(8);
}

/** The leader of an invocation's process group, when it started, its tag, and its stdio. */
export interface Invocation {
  readonly pid: number;
  readonly startTicks: number;
  readonly tag: string;
  /** What /proc/<pid>/fd/0..2 linked to at its start: whoever holds one of these is the invocation's. */
  readonly stdio?: readonly string[];
}

interface Record {
  readonly invocation: Invocation;
  finishedTicks: number | null;
  /** While it waits, warm, for a request: ends and replaces it. */
  replace: (() => void) | null;
}

const running = new Map<number, Record>();
const ended: Record[] = [];
/**
 * Ended invocations are remembered this long, and at most this many (a look through them is a
 * loop); an orphan started before the oldest is not attributed by time.
 */
const REMEMBER_ENDED_MS = 10 * 60_000;
const REMEMBER_ENDED_MAX = 2000;
/** The earliest tick from which the records are complete. */
let completeSinceTicks = 0;

/** The stdio sockets of a process alyx has just started, as /proc shows them; [] where it cannot. */
export function stdioLinks(pid: number): string[] {
  if (process.platform !== 'linux') return [];
  const links: string[] = [];
  for (let fd = 0; fd <= 2; fd++) {
    try {
      links.push(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      // gone already, or the fd was closed
    }
  }
  return links.filter((link) => link.startsWith('socket:') || link.startsWith('pipe:'));
}

/** Records a function process alyx has just started. */
export function registerInvocation(invocation: Invocation): void {
  if (completeSinceTicks === 0) completeSinceTicks = invocation.startTicks;
  running.set(invocation.pid, { invocation, finishedTicks: null, replace: null });
}

/** Records that an invocation and what it left are ended. */
export function finishInvocation(pid: number): void {
  const record = running.get(pid);
  if (!record) return;
  running.delete(pid);
  // A tick later than now: the finish is never placed before a process it may have started.
  record.finishedTicks = ticksSinceBoot(performance.now()) + 2;
  ended.push(record);
  const horizon = ticksSinceBoot(performance.now() - REMEMBER_ENDED_MS);
  while (ended.length > REMEMBER_ENDED_MAX || (ended.length > 0 && (ended[0].finishedTicks ?? 0) < horizon)) {
    completeSinceTicks = Math.max(completeSinceTicks, ended.shift()?.finishedTicks ?? 0);
  }
}

/** Notes that a function process waits, warm, for a request; `replace` ends it and starts another. */
export function markWarm(pid: number, replace: () => void): void {
  const record = running.get(pid);
  if (record) record.replace = replace;
}

/** It was given a request, or is being ended. */
export function noLongerWarm(pid: number): void {
  const record = running.get(pid);
  if (record) record.replace = null;
}

/**
 * Ends and replaces the warm processes among `invocations`, if every one still running is
 * warm; returns how many. Those are what an orphan nobody can attribute is waiting for.
 */
export function replaceIfAllWarm(invocations: readonly Invocation[]): number {
  const records = invocations.filter(isRunning).map((invocation) => running.get(invocation.pid) as Record);
  if (records.length === 0 || records.some((record) => record.replace === null)) return 0;
  for (const record of records) record.replace?.();
  return records.length;
}

/** Every function process alyx has started and not ended: running invocations and warm processes. */
export function runningInvocations(): Invocation[] {
  return [...running.values()].map((record) => record.invocation);
}

/** Whether the invocation is still running (or waiting warm). */
export function isRunning(invocation: Invocation): boolean {
  return running.get(invocation.pid)?.invocation === invocation;
}

/** Whether `pid` leads the group of a function process alyx has not ended. */
export function runningLeader(pid: number): Invocation | null {
  return running.get(pid)?.invocation ?? null;
}

/** The invocation, running or recently ended, that a process tagged `tag` belongs to. */
export function invocationTagged(tag: string): Invocation | null {
  for (const record of running.values()) if (record.invocation.tag === tag) return record.invocation;
  for (const record of ended) if (record.invocation.tag === tag) return record.invocation;
  return null;
}

/** The invocation whose stdio includes one of `links`. */
export function invocationHolding(links: readonly string[]): Invocation | null {
  if (links.length === 0) return null;
  for (const record of [...running.values(), ...ended]) if (record.invocation.stdio?.some((link) => links.includes(link))) return record.invocation;
  return null;
}

/**
 * Invocations that were running when a process started at `startTicks` did: one of them started
 * it. `complete` is false when the records no longer reach back that far.
 */
export function runningAt(startTicks: number): { invocations: Invocation[]; complete: boolean } {
  const invocations: Invocation[] = [];
  for (const record of [...running.values(), ...ended]) {
    if (record.invocation.startTicks <= startTicks && (record.finishedTicks === null || record.finishedTicks >= startTicks)) invocations.push(record.invocation);
  }
  return { invocations, complete: completeSinceTicks > 0 && startTicks >= completeSinceTicks };
}
