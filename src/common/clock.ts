/**
 * Where time comes from. The service, the reaper and the retry policy read it from here, so
 * tests can move time to the millisecond instead of sleeping.
 */
export abstract class Clock {
  abstract now(): Date;
}

export class SystemClock extends Clock {
  now(): Date {
    return new Date();
  }
}
