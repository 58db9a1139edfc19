package io.tidemark.engine;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * The status page's HTTP side, on the metrics listener: {@code GET /status} (HTML), {@code GET
 * /status.json} (the same content as JSON) and {@code POST /status/login} (a form that sets the
 * login cookie). Every answer but the login form needs the token: {@code Authorization: Bearer
 * TOKEN}, the HttpOnly cookie the login form sets, or {@code ?token=TOKEN} (which on {@code
 * /status} redirects to the plain URL with the cookie set). Without it: 401, and a body that names
 * nothing of the engine (no VM, target or host). Tokens are compared in constant time and never
 * logged.
 */
final class StatusPageHttp {

    static final String PAGE = "/status";
    static final String JSON = "/status.json";
    static final String LOGIN = "/status/login";
    static final String COOKIE = "tidemark_status";

    /** A login form body larger than this is refused (a token is some 64 bytes). */
    private static final int MAX_FORM_BYTES = 4096;

    private static final String UNAUTHORIZED_JSON = "{\"error\":\"unauthorized\"}";

    private final StatusToken token;
    private final Supplier<StatusPage.View> view;

    StatusPageHttp(StatusToken token, Supplier<StatusPage.View> view) {
        this.token = token;
        this.view = view;
    }

    /** Serves the page, its JSON and the login on {@code server}. */
    void register(HttpServer server) {
        server.createContext(PAGE, this::page);
        server.createContext(JSON, this::json);
        server.createContext(LOGIN, this::login);
    }

    private void page(HttpExchange x) throws IOException {
        try (x) {
            String path = x.getRequestURI().getPath();
            if (!path.equals(PAGE) && !path.equals(PAGE + "/")) {
                send(x, 404, "text/plain; charset=utf-8", "not found\n");
                return;
            }
            if (!isGet(x)) {
                x.getResponseHeaders().set("Allow", "GET, HEAD");
                send(x, 405, "text/plain; charset=utf-8", "method not allowed\n");
                return;
            }
            Optional<String> query = queryToken(x);
            if (query.isPresent()) {
                if (!token.matches(query.get())) {
                    unauthorizedPage(x, true);
                    return;
                }
                // the token leaves the address bar: the cookie carries the login from here on
                setCookie(x);
                x.getResponseHeaders().set("Location", PAGE);
                send(x, 303, "text/plain; charset=utf-8", "logged in\n");
                return;
            }
            if (!authorized(x)) {
                unauthorizedPage(x, false);
                return;
            }
            send(x, 200, "text/html; charset=utf-8", StatusPage.html(view.get()));
        }
    }

    private void json(HttpExchange x) throws IOException {
        try (x) {
            if (!x.getRequestURI().getPath().equals(JSON)) {
                send(x, 404, "text/plain; charset=utf-8", "not found\n");
                return;
            }
            if (!isGet(x)) {
                x.getResponseHeaders().set("Allow", "GET, HEAD");
                send(x, 405, "text/plain; charset=utf-8", "method not allowed\n");
                return;
            }
            boolean ok = authorized(x) || queryToken(x).map(token::matches).orElse(false);
            if (!ok) {
                x.getResponseHeaders().set("WWW-Authenticate", "Bearer realm=\"tidemark-status\"");
                send(x, 401, "application/json; charset=utf-8", UNAUTHORIZED_JSON);
                return;
            }
            send(x, 200, "application/json; charset=utf-8", StatusPage.json(view.get()));
        }
    }

    private void login(HttpExchange x) throws IOException {
        try (x) {
            if (!x.getRequestMethod().equals("POST")) {
                x.getResponseHeaders().set("Allow", "POST");
                send(x, 405, "text/plain; charset=utf-8", "method not allowed\n");
                return;
            }
            Optional<String> given = formToken(x);
            if (given.isEmpty() || !token.matches(given.get())) {
                unauthorizedPage(x, true);
                return;
            }
            setCookie(x);
            x.getResponseHeaders().set("Location", PAGE);
            send(x, 303, "text/plain; charset=utf-8", "logged in\n");
        }
    }

    private static boolean isGet(HttpExchange x) {
        return x.getRequestMethod().equals("GET") || x.getRequestMethod().equals("HEAD");
    }

    /** A bearer token or the login cookie that matches. */
    private boolean authorized(HttpExchange x) {
        String auth = x.getRequestHeaders().getFirst("Authorization");
        if (auth != null && auth.regionMatches(true, 0, "Bearer ", 0, 7) && token.matches(auth.substring(7))) {
            return true;
        }
        for (String header : x.getRequestHeaders().getOrDefault("Cookie", java.util.List.of())) {
            for (String pair : header.split(";")) {
                String p = pair.strip();
                if (p.startsWith(COOKIE + "=") && token.matchesCookie(p.substring(COOKIE.length() + 1))) {
                    return true;
                }
            }
        }
        return false;
    }

    private static Optional<String> queryToken(HttpExchange x) {
        return param(x.getRequestURI().getRawQuery(), "token");
    }

    private static Optional<String> formToken(HttpExchange x) throws IOException {
        try (InputStream in = x.getRequestBody()) {
            byte[] body = in.readNBytes(MAX_FORM_BYTES + 1);
            if (body.length > MAX_FORM_BYTES) {
                return Optional.empty();
            }
            return param(new String(body, StandardCharsets.UTF_8), "token");
        }
    }

    /** The value of {@code name} in an {@code application/x-www-form-urlencoded} string. */
    static Optional<String> param(String encoded, String name) {
        if (encoded == null || encoded.isEmpty()) {
            return Optional.empty();
        }
        for (String pair : encoded.split("&")) {
            int eq = pair.indexOf('=');
            String key = eq < 0 ? pair : pair.substring(0, eq);
            if (key.equals(name)) {
                try {
                    return Optional.of(URLDecoder.decode(eq < 0 ? "" : pair.substring(eq + 1), StandardCharsets.UTF_8));
                } catch (IllegalArgumentException malformed) {
                    return Optional.empty();
                }
            }
        }
        return Optional.empty();
    }

    private void setCookie(HttpExchange x) {
        // no Secure flag: the listener speaks plain HTTP (docs/deploy.md: put TLS in front beyond localhost)
        x.getResponseHeaders()
                .add(
                        "Set-Cookie",
                        COOKIE + "=" + token.cookieValue() + "; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200");
    }

    /** 401 with a login form; names nothing of the engine. */
    private static void unauthorizedPage(HttpExchange x, boolean wrong) throws IOException {
        x.getResponseHeaders().set("WWW-Authenticate", "Bearer realm=\"tidemark-status\"");
        String body = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Tidemark status:"
                + " log in</title><style>body{font:14px system-ui,sans-serif;margin:48px auto;max-width:420px}"
                + "input{font:inherit;padding:4px;width:100%;box-sizing:border-box;margin:8px 0}</style></head><body>"
                + "<h1>Tidemark status</h1>"
                + (wrong ? "<p id=\"wrong\">That token is not the status page's token.</p>" : "")
                + "<form method=\"post\" action=\"" + LOGIN + "\"><label>Token (the content of the engine's"
                + " statusPage.tokenFile)<input type=\"password\" name=\"token\" autocomplete=\"current-password\""
                + " autofocus></label><input type=\"submit\" value=\"Log in\"></form></body></html>\n";
        send(x, 401, "text/html; charset=utf-8", body);
    }

    private static void send(HttpExchange x, int status, String type, String text) throws IOException {
        byte[] body = text.getBytes(StandardCharsets.UTF_8);
        var h = x.getResponseHeaders();
        h.set("Content-Type", type);
        h.set("Cache-Control", "no-store");
        h.set("X-Content-Type-Options", "nosniff");
        h.set("X-Frame-Options", "DENY");
        h.set("Referrer-Policy", "no-referrer");
        h.set(
                "Content-Security-Policy",
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'");
        boolean head = x.getRequestMethod().equals("HEAD");
        x.sendResponseHeaders(status, head ? -1 : body.length);
        if (!head) {
            try (OutputStream out = x.getResponseBody()) {
                out.write(body);
            }
        }
    }
}
