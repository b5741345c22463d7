// Small helpers for the JSON API. Errors carry the server's message and,
// for invalid settings, the field it names ("learningRate", "layers[2]").

/** ApiError is a failed API call: message from the server, HTTP status, field. */
export class ApiError extends Error {
  constructor(message, status, field) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.field = field || '';
  }
}

async function call(method, url, body) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (err) {
    throw new ApiError('the server cannot be reached', 0, '');
  }
  let data = null;
  if ((res.headers.get('Content-Type') || '').includes('json')) {
    try {
      data = await res.json();
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    throw new ApiError((data && data.error) || `${res.status} ${res.statusText}`, res.status, data && data.field);
  }
  return data;
}

/** getJSON fetches url and returns its JSON body. */
export const getJSON = (url) => call('GET', url);

/** postJSON posts body (omit it for an empty body) and returns the JSON answer. */
export const postJSON = (url, body) => call('POST', url, body);
