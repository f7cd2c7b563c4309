// TypeScript declarations of pushcluster's browser library, served by
// every node at /push.d.ts beside /push.js (a classic script defining the
// global PushClient) and /push.mjs (an ES module exporting it).

/** A transport, tried in the order given: WebSocket, an event stream, long polling. */
export type Transport = 'websocket' | 'sse' | 'poll';

export interface PushClientOptions {
  /** Tried in this order, falling back when one does not get through. Default ['websocket', 'sse', 'poll']. */
  transports?: Transport[];
  /** Returns a fresh single-use ticket (POST /api/ticket on the node, through your backend) for every connection. */
  ticket?: () => Promise<string> | string;
  /** A token (JWT) or a function returning one; sent in a header where the transport allows, else in the URL: prefer ticket in pages. */
  token?: string | (() => Promise<string> | string);
  /** One connection for every tab of this origin, held by one of them and relayed to the others. Default false. */
  shared?: boolean;
  /** A session token to resume an identity (from an earlier welcome or POST /api/session). */
  session?: string;
  /** Milliseconds a transport may take to show its welcome before the next is tried. Default 5000. */
  connectTimeout?: number;
  /** Milliseconds without anything, not even a heartbeat, before a connection is replaced. Default 45000. */
  stallTimeout?: number;
  /** Milliseconds on a fallback before the better transports are tried again. Default 60000. */
  upgradeAfter?: number;
  /** Milliseconds each long poll is held. Default 25000. */
  pollWait?: number;
  /** Bounds of the pause before a reconnection, in milliseconds: exponential, full jitter. Defaults 250 and 15000. */
  minBackoff?: number;
  maxBackoff?: number;
}

export interface State {
  state: 'connecting' | 'connected' | 'disconnected';
  transport?: Transport;
  /** The node serving the connection, once connected. */
  node?: string;
  /** This client's ID, once connected: messages sent to it reach every tab. */
  client?: string;
  error?: PushError;
}

/** A message of a channel. */
export interface Message {
  channel: string;
  /** Its entry ID: a position to resume from. */
  id: string;
  /** Its event name; '' for none. */
  event: string;
  data: string;
}

/** Messages of a channel may be missing before the ones that follow (docs/PROTOCOL.md, Gaps). */
export interface Gap {
  type: 'gap';
  channel: string;
  reason: string;
  from?: string;
  resume?: string;
}

/** A message to this client alone, outside any channel: live only. */
export interface Direct {
  id: string;
  event: string;
  data: string;
}

/** What a node refused: its HTTP status (0 on an open connection) and error code. */
export interface PushError extends Error {
  status: number;
  code: string;
  /** The channel whose subscription was refused, if that is what it was. */
  channel?: string;
}

export interface Subscription {
  readonly channel: string;
  unsubscribe(): void;
}

export interface SubscribeOptions {
  /** A position (an entry ID) to resume after; default from now. */
  since?: string;
  onGap?: (gap: Gap) => void;
}

export interface PublishOptions {
  event?: string;
  /** Only this client of the channel gets it. */
  to?: string;
  /** Every client of the channel but this one gets it. */
  exclude?: string;
  /** A retry with the same key within the nodes' window stores nothing and resolves to the first publish's id, with duplicate: true. */
  idempotencyKey?: string;
}

export declare class PushClient {
  /** url: the node or load balancer, e.g. 'https://push.example.com'; default this page's origin. */
  constructor(url?: string, options?: PushClientOptions);
  on(event: 'state', listener: (s: State) => void): () => void;
  on(event: 'direct', listener: (d: Direct) => void): () => void;
  on(event: 'error', listener: (e: PushError) => void): () => void;
  /** Every message of channel, once each and in order, across reconnections to any node. */
  subscribe(channel: string, onMessage: (m: Message) => void, options?: SubscribeOptions): Subscription;
  /** Over the WebSocket when one is held, else POST /api/publish. */
  publish(channel: string, data: string, options?: PublishOptions): Promise<{ id: string; duplicate?: boolean }>;
  close(): void;
}
