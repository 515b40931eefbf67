import { Body, Controller, Get, Headers, HttpCode, Patch, Post, Query, Res } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiHeader,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiPayloadTooLargeResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { Response } from 'express';
import { ApiJobIdParam, JobIdParam } from '../common/job-id.param.js';
import { httpStatusOf } from '../common/domain-exception.filter.js';
import {
  ClaimJobsBatchDto,
  CreateJobsBatchDto,
  JobsBatchResponseDto,
  LeasedJobsBatchResponseDto,
  StatusUpdatesBatchDto,
  StatusUpdatesBatchResponseDto,
} from './dto/batch.dto.js';
import { ChangeStatusDto } from './dto/change-status.dto.js';
import { ClaimJobDto } from './dto/claim-job.dto.js';
import { CreateJobDto } from './dto/create-job.dto.js';
import {
  JobPageResponseDto,
  JobResponseDto,
  LeasedJobResponseDto,
  presentJob,
  presentLeasedJob,
} from './dto/job.response.dto.js';
import { EmptyBodyDto, HeartbeatDto, HeartbeatResponseDto } from './dto/heartbeat.dto.js';
import { ListJobsQueryDto } from './dto/list-jobs.query.dto.js';
import { JobsService } from './jobs.service.js';

@ApiTags('jobs')
@Controller('jobs')
export class JobsController {
  constructor(private readonly jobs: JobsService) {}

  @Post()
  @ApiOperation({ summary: 'Queue a job' })
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: 'Same as the idempotencyKey field.' })
  @ApiCreatedResponse({ type: JobResponseDto, description: 'Created; Location names the job.' })
  @ApiOkResponse({ type: JobResponseDto, description: 'The idempotency key was used before with the same parameters.' })
  @ApiBadRequestResponse({ description: 'Invalid body (unknown fields too).' })
  @ApiConflictResponse({ description: 'The idempotency key was used with different parameters.' })
  @ApiPayloadTooLargeResponse({ description: 'Body larger than MAX_PAYLOAD_BYTES.' })
  async create(
    @Body() body: CreateJobDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res() res: Response,
  ): Promise<void> {
    const { job, created } = await this.jobs.create(body, idempotencyKey);
    res
      .status(created ? 201 : 200)
      .location(`/jobs/${job.id}`)
      .json(presentJob(job));
  }

  @Post('batch')
  @ApiOperation({
    summary: 'Queue up to 1000 jobs at once, all or nothing',
    description: 'One transaction: if any item is refused (e.g. an idempotency conflict), none is created.',
  })
  @ApiCreatedResponse({ type: JobsBatchResponseDto, description: 'The jobs, in the order sent.' })
  @ApiBadRequestResponse({ description: 'Invalid body or item (the message names the item: jobs.3.name ...).' })
  @ApiConflictResponse({ description: 'An item reused an idempotency key with different parameters.' })
  @ApiPayloadTooLargeResponse({ description: 'Body larger than MAX_PAYLOAD_BYTES.' })
  async createBatch(@Body() body: CreateJobsBatchDto): Promise<JobsBatchResponseDto> {
    return { jobs: (await this.jobs.createBatch(body.jobs)).map(presentJob) };
  }

  @Post('claim/batch')
  @ApiOperation({ summary: 'Claim up to `limit` due jobs at once, each with its own lease' })
  @ApiOkResponse({ type: LeasedJobsBatchResponseDto, description: 'The claimed jobs in claim order.' })
  @ApiNoContentResponse({ description: 'Nothing is claimable; empty body.' })
  @ApiBadRequestResponse({ description: 'Invalid body.' })
  async claimBatch(@Body() body: ClaimJobsBatchDto, @Res() res: Response): Promise<void> {
    const { limit, ...request } = body;
    const jobs = await this.jobs.claimMany(request, limit, abortOnClose(res));
    this.closeConnectionIfShuttingDown(res);
    if (jobs.length > 0) res.status(200).json({ jobs: jobs.map(presentLeasedJob) });
    else res.status(204).end();
  }

  @Patch('status/batch')
  @ApiOperation({
    summary: 'Report up to 100 outcomes at once',
    description:
      'Each item is applied as PATCH /jobs/:id/status would be, on its own, and its outcome reported with the ' +
      'status code that request would have had.',
  })
  @ApiOkResponse({ type: StatusUpdatesBatchResponseDto })
  @ApiBadRequestResponse({ description: 'Malformed batch.' })
  async changeStatusBatch(@Body() body: StatusUpdatesBatchDto): Promise<StatusUpdatesBatchResponseDto> {
    const outcomes = await this.jobs.changeStatusBatch(body.updates);
    return {
      results: outcomes.map((outcome) =>
        'job' in outcome
          ? { id: outcome.id, statusCode: 200, job: presentJob(outcome.job) }
          : { id: outcome.id, statusCode: httpStatusOf(outcome.error), message: outcome.error.message },
      ),
    };
  }

  @Get()
  @ApiOperation({ summary: 'List jobs in ascending id order, a page at a time' })
  @ApiOkResponse({ type: JobPageResponseDto })
  @ApiBadRequestResponse({ description: 'Invalid query or cursor.' })
  async list(@Query() query: ListJobsQueryDto): Promise<JobPageResponseDto> {
    const page = await this.jobs.list(query);
    return { items: page.items.map(presentJob), nextCursor: page.nextCursor };
  }

  @Post('claim')
  @ApiOperation({ summary: 'Claim the next due job and take a lease on it' })
  @ApiOkResponse({ type: LeasedJobResponseDto, description: 'The claimed job, with its leaseToken.' })
  @ApiNoContentResponse({ description: 'Nothing is claimable; empty body.' })
  @ApiBadRequestResponse({ description: 'Invalid body.' })
  async claim(@Body() body: ClaimJobDto, @Res() res: Response): Promise<void> {
    const job = await this.jobs.claimNext(body, abortOnClose(res));
    this.closeConnectionIfShuttingDown(res);
    if (job) res.status(200).json(presentLeasedJob(job));
    else res.status(204).end();
  }

  /**
   * A claim that waited until shutdown answers with `Connection: close`: otherwise its keep-alive
   * connection would hold the server's close for the keep-alive timeout.
   */
  private closeConnectionIfShuttingDown(res: Response): void {
    if (this.jobs.isShuttingDown) res.setHeader('Connection', 'close');
  }

  @Get(':id')
  @ApiOperation({ summary: 'Read one job' })
  @ApiJobIdParam()
  @ApiOkResponse({ type: JobResponseDto })
  @ApiBadRequestResponse({ description: 'The id is not a positive integer.' })
  @ApiNotFoundResponse({ description: 'No such job.' })
  async get(@JobIdParam() id: number): Promise<JobResponseDto> {
    return presentJob(await this.jobs.get(id));
  }

  @Patch(':id/status')
  @ApiJobIdParam()
  @ApiOperation({
    summary: 'Move a job through the state machine',
    description:
      'running claims a queued job (the response carries the leaseToken); succeeded / failed end the running ' +
      'attempt (failed re-queues it with a backoff while attempts remain, unless retry is false); cancelled ' +
      'stops it. With a leaseToken the change is fenced to that lease; without one it is an operator action.',
  })
  @ApiOkResponse({ type: JobResponseDto, description: 'The job after the transition (with leaseToken for running).' })
  @ApiBadRequestResponse({ description: 'Invalid body or id.' })
  @ApiNotFoundResponse({ description: 'No such job.' })
  @ApiConflictResponse({ description: 'The state machine does not allow it, or the lease token is not current.' })
  async changeStatus(
    @JobIdParam() id: number,
    @Body() body: ChangeStatusDto,
  ): Promise<JobResponseDto | LeasedJobResponseDto> {
    const job = await this.jobs.changeStatus(id, body);
    return body.status === 'running' ? presentLeasedJob(job) : presentJob(job);
  }

  @Post(':id/heartbeat')
  @HttpCode(200)
  @ApiJobIdParam()
  @ApiOperation({
    summary: 'Extend the lease on a running job',
    description:
      'Send it well within the lease (e.g. every third of leaseMs). A 409 means the lease is lost: the job was ' +
      're-claimed after the lease expired, finished, or cancelled. The worker must stop working on it.',
  })
  @ApiOkResponse({ type: HeartbeatResponseDto })
  @ApiBadRequestResponse({ description: 'Invalid body or id.' })
  @ApiNotFoundResponse({ description: 'No such job.' })
  @ApiConflictResponse({ description: 'The lease is lost; stop working on the job.' })
  async heartbeat(@JobIdParam() id: number, @Body() body: HeartbeatDto): Promise<HeartbeatResponseDto> {
    const leaseExpiresAt = await this.jobs.heartbeat(id, body);
    return { leaseExpiresAt: leaseExpiresAt.toISOString() };
  }

  @Post(':id/cancel')
  @HttpCode(200)
  @ApiJobIdParam()
  @ApiOperation({
    summary: 'Cancel a queued or running job',
    description: "A running job's lease is revoked: its worker's next heartbeat or completion gets 409.",
  })
  @ApiOkResponse({ type: JobResponseDto })
  @ApiNotFoundResponse({ description: 'No such job.' })
  @ApiConflictResponse({ description: 'The job is already terminal.' })
  async cancel(@JobIdParam() id: number, @Body() _body: EmptyBodyDto): Promise<JobResponseDto> {
    return presentJob(await this.jobs.cancel(id));
  }
}

/** Aborts when the client goes away before the response is sent: a waiting claim then stops. */
function abortOnClose(res: Response): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  return controller.signal;
}
