/** HTTP shape of the webhook operations: parse, call the domain, map the result. */
import type { operations } from '../../openapi/generated/ticket-service.js';
import { listHeaders } from '../../platform/pagination.js';
import type { OperationHandlers } from '../../platform/openapi-routes.js';
import type { TicketServiceContext } from '../domain/context.js';
import * as webhooks from '../domain/webhooks.js';

type WebhookOperationId =
  | 'listWebhooks'
  | 'createWebhook'
  | 'getWebhook'
  | 'updateWebhook'
  | 'deleteWebhook'
  | 'pingWebhook'
  | 'rotateWebhookSecret'
  | 'listWebhookDeliveries'
  | 'retryWebhookDelivery';

export function webhookHandlers(context: TicketServiceContext): OperationHandlers<Pick<operations, WebhookOperationId>> {
  return {
    listWebhooks: async (request) => {
      const page = await webhooks.listWebhooks(context, request.query);
      return { status: 200, body: page.items.map((row) => webhooks.toApiWebhook(row)), headers: listHeaders(request, page) };
    },
    createWebhook: async (request) => {
      const created = await webhooks.createWebhook(context, request.body);
      return { status: 201, body: created, headers: { location: `/webhooks/${created.id}` } };
    },
    getWebhook: async (request) => ({ status: 200, body: webhooks.toApiWebhook(await webhooks.findWebhook(context, request.params.webhook_id)) }),
    updateWebhook: async (request) => ({ status: 200, body: webhooks.toApiWebhook(await webhooks.updateWebhook(context, request.params.webhook_id, request.body)) }),
    deleteWebhook: async (request) => {
      await webhooks.deleteWebhook(context, request.params.webhook_id);
      return { status: 204, body: undefined };
    },
    pingWebhook: async (request) => ({ status: 202, body: await webhooks.pingWebhook(context, request.params.webhook_id) }),
    rotateWebhookSecret: async (request) => ({ status: 200, body: await webhooks.rotateWebhookSecret(context, request.params.webhook_id) }),
    listWebhookDeliveries: async (request) => {
      const page = await webhooks.listDeliveries(context, request.params.webhook_id, request.query);
      return { status: 200, body: page.items.map(webhooks.toApiDelivery), headers: listHeaders(request, page) };
    },
    retryWebhookDelivery: async (request) => ({ status: 202, body: await webhooks.retryDelivery(context, request.params.webhook_id, request.params.delivery_id) }),
  };
}
