import { ValidateIf } from 'class-validator';

/**
 * The field may be left out, but if it is sent it must be valid: unlike class-validator's
 * `null` is not "left out" (types are strict: `"runAt": null` is a 400, not 1970).
 */
export const Optional = () => ValidateIf((_object: object, value: unknown) => value !== undefined);
