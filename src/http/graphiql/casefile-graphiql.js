// casefile's GraphiQL page: the API token bar, and GraphiQL wired to casefile's endpoints:
// queries and mutations go to POST graphql, subscriptions to the graphql/ws WebSocket
// (graphql-transport-ws), both beside this page and authenticated with the saved token.
/* global React, ReactDOM, GraphiQL, graphqlWs */
(function () {
  'use strict';

  var TOKEN_KEY = 'casefile.apiToken';
  var DEFAULT_QUERY = [
    '# Save an API token above, then press Ctrl-Enter.',
    '{',
    '  viewer {',
    '    email',
    '    role',
    '  }',
    '}',
    '',
  ].join('\n');

  // ---- token storage ------------------------------------------------------------------

  var memoryToken = '';

  function loadToken() {
    try {
      return window.localStorage.getItem(TOKEN_KEY) || '';
    } catch (e) {
      return memoryToken;
    }
  }

  function storeToken(token) {
    memoryToken = token;
    try {
      if (token) {
        window.localStorage.setItem(TOKEN_KEY, token);
      } else {
        window.localStorage.removeItem(TOKEN_KEY);
      }
    } catch (e) {
      // Storage disabled: the token lasts as long as the page.
    }
  }

  // `#token=...` in the URL is taken once, saved, and removed from the address bar and
  // history, so that a link can open the page already authenticated.
  function takeTokenFromFragment() {
    var hash = window.location.hash;
    if (!hash || hash.length < 2) return;
    var params = new URLSearchParams(hash.slice(1));
    var token = params.get('token');
    if (token === null) return;
    storeToken(token.trim());
    params.delete('token');
    var rest = params.toString();
    var url = window.location.pathname + window.location.search + (rest ? '#' + rest : '');
    window.history.replaceState(window.history.state, '', url);
  }

  // ---- endpoints ----------------------------------------------------------------------

  function endpoint(path) {
    var url = new URL(path, document.baseURI);
    url.search = '';
    url.hash = '';
    return url;
  }

  var httpUrl = endpoint('graphql').toString();
  var wsUrl = (function () {
    var url = endpoint('graphql/ws');
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    return url.toString();
  })();

  // ---- fetcher ------------------------------------------------------------------------

  function withHeaders(token, extra) {
    var headers = new Headers({
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json',
    });
    if (token) headers.set('authorization', 'Bearer ' + token);
    // Headers typed into GraphiQL's header editor win over the saved token.
    if (extra && typeof extra === 'object') {
      Object.keys(extra).forEach(function (name) {
        if (extra[name] !== undefined && extra[name] !== null) headers.set(name, String(extra[name]));
      });
    }
    return headers;
  }

  function errorResult(message) {
    return { errors: [{ message: message }] };
  }

  async function postGraphql(params, extraHeaders) {
    var token = loadToken();
    var response;
    try {
      response = await fetch(httpUrl, {
        method: 'POST',
        headers: withHeaders(token, extraHeaders),
        body: JSON.stringify(params),
      });
    } catch (e) {
      return errorResult('Could not reach ' + httpUrl + ': ' + e.message);
    }
    var text = await response.text();
    try {
      return JSON.parse(text);
    } catch (e) {
      var hint = response.status === 401 && !token ? ' (save an API token above)' : '';
      return errorResult('HTTP ' + response.status + ' ' + response.statusText + hint + ': ' + text.slice(0, 500));
    }
  }

  function closeEventMessage(event) {
    var reasons = {
      4401: 'the token was not accepted (save a valid API token above)',
      4403: 'the token was refused, or may not do this',
    };
    var reason = event.reason || reasons[event.code] || 'connection closed';
    return 'WebSocket ' + wsUrl + ' closed (' + event.code + '): ' + reason;
  }

  function asError(error) {
    if (error instanceof Error) return error;
    if (error && typeof error.code === 'number') return new Error(closeEventMessage(error));
    if (Array.isArray(error)) return new Error(error.map(function (e) { return e.message; }).join('\n'));
    if (error && error.type === 'error') return new Error('Could not connect to ' + wsUrl);
    return new Error(String(error));
  }

  function createWsClient() {
    return graphqlWs.createClient({
      url: wsUrl,
      lazy: true,
      retryAttempts: 2,
      connectionParams: function () {
        var token = loadToken();
        return token ? { authorization: 'Bearer ' + token } : {};
      },
    });
  }

  // The operations a document defines, read from its text: GraphiQL's parsed document can
  // lag behind the editor by a keystroke, the text is exactly what will be sent.
  var WORD = /[_0-9A-Za-z]+/y;

  function operationsOf(query) {
    var operations = [];
    var pending = null; // the definition whose selection set has not opened yet
    var depth = 0;
    var parens = 0;
    var i = 0;
    while (i < query.length) {
      var c = query[i];
      if (c === '#') {
        while (i < query.length && query[i] !== '\n' && query[i] !== '\r') i += 1;
      } else if (c === '"') {
        if (query.startsWith('"""', i)) {
          i += 3;
          while (i < query.length && !query.startsWith('"""', i)) i += query.startsWith('\\"""', i) ? 4 : 1;
          i += 3;
        } else {
          i += 1;
          while (i < query.length && query[i] !== '"' && query[i] !== '\n') i += query[i] === '\\' ? 2 : 1;
          i += 1;
        }
      } else if (/[_A-Za-z]/.test(c)) {
        WORD.lastIndex = i;
        var word = WORD.exec(query)[0];
        if (depth === 0 && parens === 0) {
          if (pending === null) {
            var isOperation = word === 'query' || word === 'mutation' || word === 'subscription';
            pending = { type: isOperation ? word : 'other', name: null, awaitingName: isOperation };
          } else if (pending.awaitingName) {
            pending.name = word;
            pending.awaitingName = false;
          }
        }
        i += word.length;
      } else {
        if (c === '(') parens += 1;
        else if (c === ')') parens -= 1;
        else if (c === '@' && pending) pending.awaitingName = false;
        else if (c === '{') {
          if (depth === 0 && parens === 0) {
            if (pending === null) operations.push({ type: 'query', name: null });
            else if (pending.type !== 'other') operations.push(pending);
            pending = null;
          }
          depth += 1;
        } else if (c === '}') depth -= 1;
        i += 1;
      }
    }
    return operations;
  }

  function isSubscription(query, operationName) {
    var operations = operationsOf(typeof query === 'string' ? query : '');
    var operation = operationName
      ? operations.find(function (o) { return o.name === operationName; })
      : operations.length === 1 ? operations[0] : undefined;
    return Boolean(operation) && operation.type === 'subscription';
  }

  async function* subscribe(wsClient, params) {
    try {
      for await (var result of wsClient.iterate(params)) {
        yield result;
      }
    } catch (error) {
      throw asError(error);
    }
  }

  function createFetcher(wsClient) {
    return function fetcher(params, options) {
      if (isSubscription(params.query, params.operationName)) {
        return subscribe(wsClient, params);
      }
      return postGraphql(params, options && options.headers);
    };
  }

  // ---- page ---------------------------------------------------------------------------

  var form = document.getElementById('cf-token-form');
  var input = document.getElementById('cf-token-input');
  var forget = document.getElementById('cf-token-forget');
  var status = document.getElementById('cf-token-status');

  function showStatus() {
    var token = loadToken();
    status.classList.toggle('cf-warn', !token);
    status.textContent = token
      ? 'token saved (…' + token.slice(-4) + ')'
      : 'no token saved: requests are sent unauthenticated';
  }

  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  var wsClient = null;

  // (Re)renders GraphiQL with a fresh fetcher, so a changed token reconnects the WebSocket
  // and refetches the schema.
  function render() {
    if (wsClient) wsClient.dispose();
    wsClient = createWsClient();
    root.render(
      React.createElement(GraphiQL, {
        fetcher: createFetcher(wsClient),
        defaultQuery: DEFAULT_QUERY,
        shouldPersistHeaders: false,
      }),
    );
  }

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var token = input.value.trim();
    if (!token) {
      input.focus();
      return;
    }
    storeToken(token);
    input.value = '';
    showStatus();
    render();
  });

  forget.addEventListener('click', function () {
    storeToken('');
    input.value = '';
    showStatus();
    render();
  });

  takeTokenFromFragment();
  showStatus();
  render();
})();
