// Validate a Teams app manifest the way npm @microsoft/app-manifest does
// (ManifestUtil.validateManifestAgainstSchema: Ajv draft-04, allErrors, strictTypes off,
// formats uri/email/regex), and print the errors as a JSON array.
//   node tests/deploy/ajv_validate.js <schema.json> <manifest.json>
"use strict";
const fs = require("fs");
const Ajv = require("ajv-draft-04");
const addFormats = require("ajv-formats");

const read = (path) => JSON.parse(fs.readFileSync(path, "utf8").replace(/^\uFEFF/, ""));
const [schemaPath, manifestPath] = process.argv.slice(2);
const ajv = new Ajv({ allErrors: true, strictTypes: false, logger: false });
addFormats(ajv, ["uri", "email", "regex"]);
const validate = ajv.compile(read(schemaPath));
const valid = validate(read(manifestPath));
const errors = valid ? [] : validate.errors.map((e) => ({
  instancePath: e.instancePath,
  keyword: e.keyword,
  message: e.message,
}));
process.stdout.write(JSON.stringify(errors));
