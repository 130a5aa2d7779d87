DROP TABLE webhook_deliveries;
DROP TABLE webhooks;
DROP TABLE delivery_cursors;
