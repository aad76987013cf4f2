import type { Clock } from "../../src/api/clock.js";

/** A Clock whose time moves and whose timers fire only when the test advances it. */
export class ManualClock implements Clock {
  private timers: { at: number; callback: () => void; cancelled: boolean }[] = [];

  constructor(private current = 0) {}

  now(): number {
    return this.current;
  }

  setTimeout(callback: () => void, milliseconds: number): { cancel(): void } {
    const timer = { at: this.current + milliseconds, callback, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => void (timer.cancelled = true) };
  }

  /** Moves time forward and runs every timer that became due, in the order they were set. */
  advance(milliseconds: number): void {
    this.current += milliseconds;
    const due = this.timers.filter((timer) => timer.at <= this.current && !timer.cancelled);
    this.timers = this.timers.filter((timer) => !due.includes(timer));
    for (const timer of due) timer.callback();
  }

  /**
   * Moves time forward one due timer at a time, letting the promise callbacks each timer starts run
   * before the next fires: for code whose timers await work (API calls) and set the next timer.
   */
  async advanceSettling(milliseconds: number): Promise<void> {
    const target = this.current + milliseconds;
    for (;;) {
      const due = this.timers
        .filter((timer) => !timer.cancelled && timer.at <= target)
        .sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((timer) => timer !== due);
      this.current = due.at;
      due.callback();
      await settle();
    }
    this.current = target;
    await settle();
  }
}

/** Lets every pending promise callback (and what those callbacks start) run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}
