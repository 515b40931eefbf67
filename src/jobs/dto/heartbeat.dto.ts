import { ApiProperty } from '@nestjs/swagger';
import { IsString, Length } from 'class-validator';
import { LeaseMsField } from './lease-ms.decorator.js';

export class HeartbeatDto {
  @ApiProperty({ description: 'The lease token from the claim.', example: '3f0c8a4e9b2d4c1e8f7a6b5c4d3e2f10' })
  @IsString()
  @Length(1, 200)
  leaseToken!: string;

  @LeaseMsField('New lease length from now (default LEASE_MS). The expiry only ever moves later.')
  leaseMs?: number;
}

export class HeartbeatResponseDto {
  @ApiProperty({ example: '2026-12-04T16:41:27.599Z' })
  leaseExpiresAt!: string;
}

/** Endpoints that take no body still reject any field sent to them (400). */
export class EmptyBodyDto {}
