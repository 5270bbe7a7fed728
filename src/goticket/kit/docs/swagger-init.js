// Starts Swagger UI on /docs. A file of its own, not an inline <script>: the page's
// Content-Security-Policy allows scripts from this origin only.
"use strict";
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#ui",
  deepLinking: true,
  // The default validator badge asks an outside service to check the document: never.
  validatorUrl: null,
});
