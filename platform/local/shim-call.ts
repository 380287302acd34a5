/**
 * The call both local binding shims (d1-shim.ts, kv-shim.ts) make, as source: one JSON POST to the
 * binding's loopback entrypoint at ORIGIN/<op>, whose answer is {ok: true, ...} or
 * {ok: false, error} (thrown as the binding's error). The shim defines ORIGIN.
 */
export const SHIM_CALL_SOURCE = `async function call(fetcher, body) {
  const response = await fetcher.fetch(ORIGIN + "/" + body.op, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await response.json();
  if (!answer.ok) throw new Error(answer.error);
  return answer;
}
`;
