// Validates the OpenAPI document (swagger-parser, against the OpenAPI 3.1 schema) and writes
// the TypeScript types a client is generated from (openapi-typescript); binary bodies
// (`format: binary`) become Blob, as a browser or Node client sends them.
// Usage: node generate.mjs gen/openapi.json gen/api.d.ts
import { readFileSync, writeFileSync } from "node:fs";
import SwaggerParser from "@apidevtools/swagger-parser";
import openapiTS, { astToString } from "openapi-typescript";
import ts from "typescript";

const [input, output] = process.argv.slice(2);
const doc = JSON.parse(readFileSync(input, "utf8"));
await SwaggerParser.validate(structuredClone(doc));
console.log(`openapi: ${input} is a valid OpenAPI ${doc.openapi} document`);

const BLOB = ts.factory.createTypeReferenceNode(ts.factory.createIdentifier("Blob"));
const ast = await openapiTS(doc, {
  transform(schema) {
    if (schema.format === "binary") return BLOB;
  },
});
writeFileSync(output, astToString(ast));
console.log(`openapi: wrote ${output}`);
