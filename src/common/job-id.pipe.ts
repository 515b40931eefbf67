import { BadRequestException, type PipeTransform } from '@nestjs/common';

/** Job ids in paths: positive decimal integers that fit a JavaScript number exactly. */
export class JobIdPipe implements PipeTransform<string, number> {
  transform(value: string): number {
    if (!/^[1-9]\d{0,14}$/.test(value)) {
      throw new BadRequestException(`Job id must be a positive integer, got "${value}"`);
    }
    return Number(value);
  }
}
