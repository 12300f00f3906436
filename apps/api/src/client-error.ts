import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '@llmgw/observability';
import { ApiError, rawErrorResponse } from './errors/index.ts';

export interface ClientErrorOptions {
  log: Logger;
  /** Each answered parse error, by status (the api counts them in http_requests_total). */
  onAnswered?: (status: number) => void;
}

/** What a parse error of Node's HTTP parser (llhttp) becomes. */
function errorFor(code: string | undefined): ApiError {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return new ApiError(
        'request_header_fields_too_large',
        'request headers exceed the server limit (16 KB in total); send smaller headers',
      );
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new ApiError('payload_too_large', 'chunk extensions too large');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new ApiError('request_timeout', 'the request was not received in time');
    default:
      return new ApiError('invalid_request', `malformed HTTP request (${code ?? 'parse error'})`);
  }
}

/**
 * Requests Node's HTTP parser refuses before any route sees them — headers over
 * `--max-http-header-size`, a malformed request line or header (`HPE_INVALID_*`), a request not
 * received within `requestTimeout` — get a JSON error in the seed shape (`{"error","message",
 * "request_id"}`) and `Connection: close`, instead of Node's bare status line. Without a
 * `clientError` listener Node writes that bare line itself; with one, answering is ours.
 */
export function answerClientErrors(server: Server, { log, onAnswered }: ClientErrorOptions): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // Gone, or a response on this connection already started: nothing coherent can be written.
    const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const apiErr = errorFor(err.code);
    const requestId = randomUUID();
    socket.end(rawErrorResponse(apiErr, requestId));
    log.info(
      { request_id: requestId, status: apiErr.status, code: apiErr.code, parse_error: err.code },
      'client_error',
    );
    onAnswered?.(apiErr.status);
  });
}
