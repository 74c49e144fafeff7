// A client generated from the OpenAPI document, used as its authors would: caption a photo
// sent as a raw body and as a multipart form, read the typed answers, and meet a typed
// problem. It must compile (tsc --strict) and pass against the real server.
// Usage: node dist/caption.js BASE_URL PHOTO
import { readFileSync } from "node:fs";
import createClient from "openapi-fetch";
import type { components, paths } from "./gen/api.js";

type Answer = components["schemas"]["CaptionAnswer"];
type One = components["schemas"]["CaptionResponse"];
type Problem = components["schemas"]["Problem"];

const [base, photo] = process.argv.slice(2);
const client = createClient<paths>({ baseUrl: base });
const image = new Blob([readFileSync(photo)], { type: "image/jpeg" });

function check(ok: boolean, what: string): asserts ok {
  if (!ok) throw new Error(`openapi client: ${what}`);
}

type CaptionBody = NonNullable<paths["/api/v1/captions"]["post"]["requestBody"]>["content"];
type Form = CaptionBody["multipart/form-data"];

// Raw image bodies go as they are; the multipart form as FormData.
function serialize(body: Blob | Form): Blob | FormData {
  if (body instanceof Blob) return body;
  const f = new FormData();
  for (const img of body.image) f.append("image", img, "photo.jpg");
  if (body.lang) f.append("lang", body.lang);
  return f;
}

function one(answer: Answer | undefined): One {
  check(answer !== undefined && "captions" in answer, "one image has one caption answer");
  return answer;
}

const models = await client.GET("/api/v1/models");
check(models.response.status === 200 && models.data !== undefined, "GET /api/v1/models");
const lang = models.data.models[0].languages[0];
check(lang === "id" || lang === "en", `a caption language: ${lang}`);

// A raw image body.
const raw = await client.POST("/api/v1/captions", {
  params: { query: { lang, style: "short", alternatives: 2, gender_neutral: true } },
  body: image,
  bodySerializer: serialize,
  headers: { "Content-Type": "image/jpeg" },
});
check(raw.response.status === 200, `raw body: HTTP ${raw.response.status}`);
const rawAnswer = one(raw.data);
check(rawAnswer.captions.length >= 1, "raw body: captions");
check(rawAnswer.captions.every((c) => c.lang === lang && c.text.split(" ").length <= 12), "short captions in the language asked for");

// A multipart form with two images: one entry per image.
const form = await client.POST("/api/v1/captions", {
  body: { image: [image, image], lang },
  bodySerializer: serialize,
});
check(form.response.status === 200 && form.data !== undefined, `multipart: HTTP ${form.response.status}`);
check("results" in form.data && form.data.results.length === 2, "multipart: two results");

// A typed problem: text is not an image.
const bad = await client.POST("/api/v1/captions", {
  body: new Blob(["not a photo"]),
  bodySerializer: serialize,
  headers: { "Content-Type": "image/png" },
});
const problem: Problem | undefined = bad.error;
check(bad.response.status === 415 && problem?.code === "unsupported_media_type", `problem: ${bad.response.status}`);

console.log(`openapi client: captioned ${photo}: "${rawAnswer.captions[0].text}"`);
