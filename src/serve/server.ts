// `hlm serve`'s HTTP side (node:http): POST /v1/completions, GET /v1/models[/{id}], GET /health.
// Every error is OpenAI's error object with a fitting status: 400 for a bad request (malformed
// JSON, unknown fields, wrong types, a prompt longer than the context, a body over the size
// limit), 401 for a missing or wrong API key, 404 for an unknown model or URL, 405 for a wrong
// method, 503 while draining, 500 for the server's own failures (logged). close() drains: the
// listener stops, idle keep-alive connections close, requests in flight run to the end (their
// responses say Connection: close), then the promise resolves.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { log } from '../log.js';
import { complete, completionId, type ServedModel } from './completion.js';
import type { Engine } from './engine.js';
import { ApiError, badRequest, parseCompletionRequest, type Choice } from './protocol.js';

/** Default limit on a request body (lm-eval's largest requests are a few hundred kB). */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;

export interface ServerOptions {
  host: string;
  /** 0: any free port (see address()). */
  port: number;
  /** Required as `Authorization: Bearer <key>` on /v1/ when set. */
  apiKey?: string;
  maxBodyBytes?: number;
}

export interface ServerStats {
  requests: number;
  errors: number;
}

const JSON_HEADERS = { 'Content-Type': 'application/json' };

export class HlmServer {
  private draining = false;
  private inFlight = 0;
  private quiet: (() => void)[] = [];
  readonly stats: ServerStats = { requests: 0, errors: 0 };

  private constructor(
    private readonly http: Server,
    /** null when the model cannot serve completions (refused with this message). */
    private readonly engine: Engine | null,
    private readonly model: ServedModel,
    private readonly refusal: string | null,
    private readonly opts: ServerOptions,
  ) {}

  /** Listen on host:port; `engine` null (with a refusal) serves the model list but refuses completions. */
  static async start(
    engine: Engine | null,
    model: ServedModel,
    opts: ServerOptions,
    refusal: string | null = null,
  ): Promise<HlmServer> {
    const http = createServer();
    const server = new HlmServer(http, engine, model, refusal, opts);
    http.on('request', (req, res) => void server.handle(req, res));
    http.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(opts.port, opts.host, () => {
        http.off('error', reject);
        resolve();
      });
    });
    return server;
  }

  address(): { host: string; port: number } {
    const a = this.http.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  /** Stop listening and let the requests in flight finish. */
  async close(): Promise<void> {
    this.draining = true;
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeIdleConnections();
    if (this.inFlight > 0) await new Promise<void>((r) => this.quiet.push(r));
    this.http.closeIdleConnections();
    await closed;
  }

  private send(res: ServerResponse, status: number, body: unknown): void {
    if (res.headersSent) {
      res.end();
      return;
    }
    const headers: Record<string, string> = { ...JSON_HEADERS };
    if (this.draining) headers.Connection = 'close';
    res.writeHead(status, headers);
    res.end(JSON.stringify(body));
  }

  private fail(res: ServerResponse, e: ApiError): void {
    this.stats.errors++;
    this.send(res, e.status, e.body());
  }

  private authorized(req: IncomingMessage): boolean {
    const key = this.opts.apiKey;
    if (!key) return true;
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    if (!m) return false;
    const a = Buffer.from(m[1]);
    const b = Buffer.from(key);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.inFlight++;
    this.stats.requests++;
    try {
      await this.route(req, res);
    } catch (e) {
      // A body left unread (refused early): answer, then close the connection rather than read it.
      if (!req.complete && !res.headersSent) res.setHeader('Connection', 'close');
      if (e instanceof ApiError) this.fail(res, e);
      else {
        log.error(`serve: ${req.method} ${req.url}: ${(e as Error).stack ?? e}`);
        this.fail(res, new ApiError(500, `internal error: ${(e as Error).message}`));
      }
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) for (const r of this.quiet.splice(0)) r();
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    const allow = (m: string) => {
      if (method !== m)
        throw new ApiError(405, `${method} is not allowed on ${path}; use ${m}`, null, 'method_not_allowed');
    };
    if (path === '/health') {
      allow('GET');
      this.send(res, this.draining ? 503 : 200, { status: this.draining ? 'draining' : 'ok', model: this.model.id });
      return;
    }
    if (!path.startsWith('/v1/'))
      throw new ApiError(404, `Unknown request URL: ${method} ${path}`, null, 'unknown_url');
    if (!this.authorized(req))
      throw new ApiError(
        401,
        'Incorrect or missing API key: send the key given to hlm serve --api-key as "Authorization: Bearer KEY"',
        null,
        'invalid_api_key',
      );
    if (this.draining) throw new ApiError(503, 'the server is shutting down', null, 'server_shutting_down');
    if (path === '/v1/models') {
      allow('GET');
      this.send(res, 200, { object: 'list', data: [this.modelCard()] });
      return;
    }
    if (path.startsWith('/v1/models/')) {
      allow('GET');
      const id = decodeURIComponent(path.slice('/v1/models/'.length));
      if (id !== this.model.id) throw this.unknownModel(id);
      this.send(res, 200, this.modelCard());
      return;
    }
    if (path === '/v1/completions') {
      allow('POST');
      await this.completions(req, res);
      return;
    }
    throw new ApiError(404, `Unknown request URL: ${method} ${path}`, null, 'unknown_url');
  }

  private modelCard() {
    return { id: this.model.id, object: 'model', created: this.model.created, owned_by: 'hlm' };
  }

  private unknownModel(id: string): ApiError {
    return new ApiError(
      404,
      `The model \`${id}\` does not exist; this server serves \`${this.model.id}\``,
      'model',
      'model_not_found',
    );
  }

  private async readBody(req: IncomingMessage): Promise<unknown> {
    const limit = this.opts.maxBodyBytes ?? MAX_BODY_BYTES;
    const tooLarge = () => badRequest(`the request body is larger than ${limit} bytes`, null, 'request_too_large');
    const declared = Number(req.headers['content-length']);
    if (declared > limit) throw tooLarge();
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > limit) throw tooLarge();
      chunks.push(c as Buffer);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    try {
      return JSON.parse(text);
    } catch (e) {
      throw badRequest(`the request body is not valid JSON: ${(e as Error).message}`, null, 'invalid_json');
    }
  }

  private async completions(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await this.readBody(req);
    const request = parseCompletionRequest(body);
    if (request.model !== this.model.id) throw this.unknownModel(request.model);
    if (!this.engine)
      throw badRequest(this.refusal ?? 'this model cannot serve completions', 'model', 'model_not_supported');
    if (!request.stream) {
      this.send(res, 200, await complete(this.engine, this.model, request));
      return;
    }
    // Server-sent events: a chunk per piece of text, then the usage (if asked for), then [DONE].
    let closed = false;
    res.on('close', () => (closed = !res.writableFinished));
    let started = false;
    const id = completionId();
    const created = Math.floor(Date.now() / 1000);
    const event = (data: unknown) => {
      if (!started) {
        const headers: Record<string, string> = { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' };
        if (this.draining) headers.Connection = 'close';
        res.writeHead(200, headers);
        started = true;
      }
      if (!closed) res.write(`data: ${JSON.stringify(data)}\n\n`);
    };
    const chunk = (choices: Choice[], usage: unknown = null) => ({
      id,
      object: 'text_completion',
      created,
      model: this.model.id,
      choices,
      usage,
    });
    try {
      const done = await complete(this.engine, this.model, request, {
        chunk: (c) => event(chunk([c])),
        aborted: () => closed,
      });
      if (request.includeUsage) event(chunk([], done.usage));
      if (!closed) res.end('data: [DONE]\n\n');
    } catch (e) {
      if (!started) throw e;
      // Headers are out: the error goes in the stream.
      const err = e instanceof ApiError ? e : new ApiError(500, `internal error: ${(e as Error).message}`);
      if (!(e instanceof ApiError)) log.error(`serve: stream: ${(e as Error).stack ?? e}`);
      this.stats.errors++;
      if (!closed) res.end(`data: ${JSON.stringify(err.body())}\n\n`);
    }
  }
}
