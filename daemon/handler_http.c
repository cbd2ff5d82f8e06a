/*
 * handler_http.c: handler = "http". Each job is one HTTP request, made with libcurl's
 * multi interface in the worker: one worker carries up to its queue's `concurrency`
 * requests at once (handler.h's start, cancel and wait), over connections kept alive
 * and reused per host, and none of this runs in the master.
 *
 * The payload is a URL (a GET), or a JSON object {"method", "url", "headers", "body"}
 * read by a small strict parser of its own (http_parse_*: known keys once each, strings
 * only, sizes bounded by max_payload). Only http and https, also across redirects.
 * The result is the response body, or with http_output = "response" the response as
 * JSON, {"status", "headers", "body"} (http_response_json), so that a chained stage
 * sees the status and headers too; either way the master hears of the status, the
 * content type and the body's length (worker_http_status), for STATUS. What ends a job:
 *   2xx                              FRAME_OK, the body (or the JSON);
 *   429, 503, other 5xx, a timeout,
 *   a connection error               FRAME_FAILED: retried with the queue's backoff, and
 *                                    no sooner than the response's Retry-After, which
 *                                    goes up in the RESULT frame's flags (seconds);
 *   any other status, a body above
 *   http_max_response, too many
 *   redirects, a bad payload         FRAME_PERMANENT: failed at once, status in the error.
 */

#include "autoconf.h"

#include <sys/types.h>

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "config.h"
#include "frame.h"
#include "handler.h"

#define HTTP_HEADERS_MAX	(64 * 1024)	/* response header bytes kept (http_output) */
#define HTTP_CTYPE_MAX		63		/* a content type's bytes told to the master */
#define HTTP_METHOD_MAX		16
#define HTTP_REQ_HEADERS_MAX	64
#define HTTP_IDLE_POLL_MS	1000		/* curl_multi_poll's wait with nothing running */
#define HTTP_ERR_URL_MAX	200		/* a URL is quoted in errors up to this */

/*
 * libcurl, loaded by the http workers alone (dlopen in http_init), not linked into
 * jobpoold: the master never runs it, and linked, its libraries (TLS, HTTP/2, IDN,
 * ...) cost every start of the daemon some 16 million instructions in the dynamic
 * loader (bench/README.md, W7).
 */
#define HTTP_LIBCURL	"libcurl.so.4"
static struct {
	__typeof__(curl_global_init)	*global_init;
	__typeof__(curl_global_cleanup)	*global_cleanup;
	__typeof__(curl_multi_init)	*multi_init;
	__typeof__(curl_multi_setopt)	*multi_setopt;
	__typeof__(curl_multi_cleanup)	*multi_cleanup;
	__typeof__(curl_multi_add_handle)	*multi_add_handle;
	__typeof__(curl_multi_remove_handle)	*multi_remove_handle;
	__typeof__(curl_multi_poll)	*multi_poll;
	__typeof__(curl_multi_perform)	*multi_perform;
	__typeof__(curl_multi_info_read)	*multi_info_read;
	__typeof__(curl_easy_init)	*easy_init;
	__typeof__(curl_easy_setopt)	*easy_setopt;
	__typeof__(curl_easy_cleanup)	*easy_cleanup;
	__typeof__(curl_easy_getinfo)	*easy_getinfo;
	__typeof__(curl_easy_strerror)	*easy_strerror;
	__typeof__(curl_slist_append)	*slist_append;
	__typeof__(curl_slist_free_all)	*slist_free_all;
	__typeof__(curl_getdate)	*getdate;
} cu;
static const struct {
	const char	*name;
	void		**fn;
} http_syms[] = {
	{ "curl_global_init", (void **)&cu.global_init },
	{ "curl_global_cleanup", (void **)&cu.global_cleanup },
	{ "curl_multi_init", (void **)&cu.multi_init },
	{ "curl_multi_setopt", (void **)&cu.multi_setopt },
	{ "curl_multi_cleanup", (void **)&cu.multi_cleanup },
	{ "curl_multi_add_handle", (void **)&cu.multi_add_handle },
	{ "curl_multi_remove_handle", (void **)&cu.multi_remove_handle },
	{ "curl_multi_poll", (void **)&cu.multi_poll },
	{ "curl_multi_perform", (void **)&cu.multi_perform },
	{ "curl_multi_info_read", (void **)&cu.multi_info_read },
	{ "curl_easy_init", (void **)&cu.easy_init },
	{ "curl_easy_setopt", (void **)&cu.easy_setopt },
	{ "curl_easy_cleanup", (void **)&cu.easy_cleanup },
	{ "curl_easy_getinfo", (void **)&cu.easy_getinfo },
	{ "curl_easy_strerror", (void **)&cu.easy_strerror },
	{ "curl_slist_append", (void **)&cu.slist_append },
	{ "curl_slist_free_all", (void **)&cu.slist_free_all },
	{ "curl_getdate", (void **)&cu.getdate },
};

/* Load libcurl and find what we call: 0, or -1 with *cause. */
static int
http_load(char **cause)
{
	void	*h;
	size_t	 i;

	if (cu.easy_init != NULL)
		return (0);
	if ((h = dlopen(HTTP_LIBCURL, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		if (asprintf(cause, "http: cannot load libcurl (%s): %s; install it "
		    "(Debian: libcurl4)", HTTP_LIBCURL, dlerror()) == -1)
			*cause = NULL;
		return (-1);
	}
	for (i = 0; i < sizeof http_syms / sizeof http_syms[0]; i++) {
		if ((*http_syms[i].fn = dlsym(h, http_syms[i].name)) == NULL) {
			if (asprintf(cause, "http: %s has no %s: too old a libcurl "
			    "(7.85 at least)", HTTP_LIBCURL, http_syms[i].name) == -1)
				*cause = NULL;
			return (-1);
		}
	}
	return (0);
}

/* One request in flight: a job of the worker. */
struct http_req {
	uint64_t		 id;
	CURL			*easy;
	struct curl_slist	*headers;
	char			*url;		/* for error texts */
	char			 method[HTTP_METHOD_MAX + 1];
	struct jobpool_output	 body;		/* the response body so far */
	uint32_t		 max;		/* http_max_response */
	int			 too_big;
	uint32_t		 retry_after;	/* seconds; 0: none said */
	int			 output;	/* http_output */
	struct jobpool_output	 hdrs;		/* "response": the last response's lines */
	char			 ctype[HTTP_CTYPE_MAX + 1]; /* its Content-Type, no blanks */
	char			 errbuf[CURL_ERROR_SIZE];
	struct http_req		*prev, *next;
};

struct http_state {
	CURLM				*multi;
	const struct queue_config	*qc;
	struct http_req			*reqs;	/* in flight */
	char				 ua[64];
};

/* What a JSON payload asks for. */
struct http_spec {
	char		 method[HTTP_METHOD_MAX + 1];
	char		*url;
	char		*body;
	size_t		 bodylen;
	int		 has_body;
	char		*headers[HTTP_REQ_HEADERS_MAX];	/* "Name: value" */
	int		 nheaders;
};

static void
http_spec_free(struct http_spec *sp)
{
	int	i;

	free(sp->url);
	free(sp->body);
	for (i = 0; i < sp->nheaders; i++)
		free(sp->headers[i]);
	memset(sp, 0, sizeof *sp);
}

/* ----- the payload: a URL, or a small JSON object ----- */

struct http_json {
	const char	*p, *end;
	char		 err[160];
};

static void
http_json_skip(struct http_json *js)
{
	while (js->p < js->end && (*js->p == ' ' || *js->p == '\t' || *js->p == '\n' ||
	    *js->p == '\r'))
		js->p++;
}

/* Append code point cp to out as UTF-8. */
static int
http_json_utf8(struct jobpool_output *out, unsigned long cp)
{
	char	b[4];
	size_t	n;

	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | (cp >> 18));
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return (obuf_add(out, b, n));
}

/* Four hex digits at js->p. */
static int
http_json_hex4(struct http_json *js, unsigned long *v)
{
	int	i, c;

	if (js->end - js->p < 4)
		return (-1);
	*v = 0;
	for (i = 0; i < 4; i++) {
		c = (unsigned char)js->p[i];
		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= (unsigned long)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*v |= (unsigned long)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*v |= (unsigned long)(c - 'A' + 10);
		else
			return (-1);
	}
	js->p += 4;
	return (0);
}

/*
 * A JSON string at js->p into a malloc'd, NUL-terminated *s (its length in *len).
 * what names it in errors. 0, or -1 with js->err.
 */
static int
http_json_string(struct http_json *js, const char *what, char **s, size_t *len)
{
	struct jobpool_output	 out = { NULL, 0, 0 };
	unsigned long		 cp, lo;
	unsigned char		 c;

	if (js->p >= js->end || *js->p != '"') {
		snprintf(js->err, sizeof js->err, "%s must be a string", what);
		return (-1);
	}
	js->p++;
	for (;;) {
		if (js->p >= js->end) {
			snprintf(js->err, sizeof js->err, "%s: unterminated string", what);
			goto fail;
		}
		c = (unsigned char)*js->p++;
		if (c == '"')
			break;
		if (c < 0x20) {
			snprintf(js->err, sizeof js->err, "%s: control character in a "
			    "string", what);
			goto fail;
		}
		if (c != '\\') {
			if (obuf_add(&out, &c, 1) != 0)
				goto oom;
			continue;
		}
		if (js->p >= js->end)
			continue;	/* unterminated: said above */
		c = (unsigned char)*js->p++;
		switch (c) {
		case '"': case '\\': case '/':
			break;
		case 'b': c = '\b'; break;
		case 'f': c = '\f'; break;
		case 'n': c = '\n'; break;
		case 'r': c = '\r'; break;
		case 't': c = '\t'; break;
		case 'u':
			if (http_json_hex4(js, &cp) != 0)
				goto bad_escape;
			if (cp >= 0xd800 && cp < 0xdc00) {
				if (js->end - js->p < 6 || js->p[0] != '\\' ||
				    js->p[1] != 'u')
					goto bad_escape;
				js->p += 2;
				if (http_json_hex4(js, &lo) != 0 || lo < 0xdc00 ||
				    lo > 0xdfff)
					goto bad_escape;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp < 0xe000)
				goto bad_escape;
			if (http_json_utf8(&out, cp) != 0)
				goto oom;
			continue;
		default:
			goto bad_escape;
		}
		if (obuf_add(&out, &c, 1) != 0)
			goto oom;
	}
	if (obuf_add(&out, "", 1) != 0)
		goto oom;
	*s = out.buf;
	*len = out.len - 1;
	return (0);
bad_escape:
	snprintf(js->err, sizeof js->err, "%s: bad escape in a string", what);
	goto fail;
oom:
	snprintf(js->err, sizeof js->err, "out of memory");
fail:
	free(out.buf);
	return (-1);
}

/* Is s an HTTP token (a method or a header name)? */
static int
http_token(const char *s)
{
	if (*s == '\0')
		return (0);
	for (; *s != '\0'; s++) {
		if (!isalnum((unsigned char)*s) && strchr("!#$%&'*+-.^_`|~", *s) == NULL)
			return (0);
	}
	return (1);
}

/* "headers": an object of strings; each becomes "Name: value". */
static int
http_json_headers(struct http_json *js, struct http_spec *sp)
{
	char	*name = NULL, *value = NULL, *h;
	size_t	 nlen, vlen;

	if (js->p >= js->end || *js->p != '{') {
		snprintf(js->err, sizeof js->err, "\"headers\" must be an object of "
		    "strings");
		return (-1);
	}
	js->p++;
	http_json_skip(js);
	if (js->p < js->end && *js->p == '}') {
		js->p++;
		return (0);
	}
	for (;;) {
		http_json_skip(js);
		if (http_json_string(js, "a header name", &name, &nlen) != 0)
			return (-1);
		if (!http_token(name) || nlen != strlen(name)) {
			snprintf(js->err, sizeof js->err, "\"headers\": '%.40s' is not a "
			    "header name", name);
			goto fail;
		}
		http_json_skip(js);
		if (js->p >= js->end || *js->p++ != ':') {
			snprintf(js->err, sizeof js->err, "\"headers\": ':' expected after "
			    "\"%.40s\"", name);
			goto fail;
		}
		http_json_skip(js);
		if (http_json_string(js, "a header value", &value, &vlen) != 0)
			goto fail;
		if (strpbrk(value, "\r\n") != NULL || vlen != strlen(value)) {
			snprintf(js->err, sizeof js->err, "\"headers\": the value of "
			    "\"%.40s\" has a line break or NUL", name);
			goto fail;
		}
		if (sp->nheaders == HTTP_REQ_HEADERS_MAX) {
			snprintf(js->err, sizeof js->err, "\"headers\": more than %d",
			    HTTP_REQ_HEADERS_MAX);
			goto fail;
		}
		/* "Name:" with nothing after it would remove curl's own header. */
		if (asprintf(&h, *value != '\0' ? "%s: %s" : "%s;", name, value) == -1) {
			snprintf(js->err, sizeof js->err, "out of memory");
			goto fail;
		}
		sp->headers[sp->nheaders++] = h;
		free(name);
		free(value);
		name = value = NULL;
		http_json_skip(js);
		if (js->p < js->end && *js->p == ',') {
			js->p++;
			continue;
		}
		if (js->p < js->end && *js->p == '}') {
			js->p++;
			return (0);
		}
		snprintf(js->err, sizeof js->err, "\"headers\": ',' or '}' expected");
		return (-1);
	}
fail:
	free(name);
	free(value);
	return (-1);
}

/*
 * The JSON object form of a payload: {"url": ..., "method": ..., "headers": {...},
 * "body": ...}. Strict: an object, known keys once each, nothing after it.
 */
static int
http_parse_json(const char *in, size_t len, struct http_spec *sp, char *err,
    size_t errlen)
{
	struct http_json	 js = { in, in + len, "" };
	char			*key = NULL, *s;
	size_t			 klen, slen;
	unsigned		 seen = 0, bit;

	js.p++;		/* '{' */
	http_json_skip(&js);
	if (js.p < js.end && *js.p == '}') {
		js.p++;
		goto done;
	}
	for (;;) {
		http_json_skip(&js);
		if (http_json_string(&js, "a key", &key, &klen) != 0)
			goto fail;
		if (strcmp(key, "url") == 0)
			bit = 1;
		else if (strcmp(key, "method") == 0)
			bit = 2;
		else if (strcmp(key, "headers") == 0)
			bit = 4;
		else if (strcmp(key, "body") == 0)
			bit = 8;
		else {
			snprintf(js.err, sizeof js.err, "unknown key \"%.40s\" (the keys "
			    "are url, method, headers, body)", key);
			goto fail;
		}
		if (seen & bit) {
			snprintf(js.err, sizeof js.err, "\"%s\" given twice", key);
			goto fail;
		}
		seen |= bit;
		http_json_skip(&js);
		if (js.p >= js.end || *js.p++ != ':') {
			snprintf(js.err, sizeof js.err, "':' expected after \"%s\"", key);
			goto fail;
		}
		http_json_skip(&js);
		switch (bit) {
		case 1:
			if (http_json_string(&js, "\"url\"", &sp->url, &slen) != 0)
				goto fail;
			if (strlen(sp->url) != slen) {
				snprintf(js.err, sizeof js.err, "\"url\" has a NUL");
				goto fail;
			}
			break;
		case 2:
			if (http_json_string(&js, "\"method\"", &s, &slen) != 0)
				goto fail;
			if (slen > HTTP_METHOD_MAX || strlen(s) != slen || !http_token(s)) {
				snprintf(js.err, sizeof js.err, "\"method\": '%.40s' is not "
				    "a method", s);
				free(s);
				goto fail;
			}
			memcpy(sp->method, s, slen + 1);
			free(s);
			break;
		case 4:
			if (http_json_headers(&js, sp) != 0)
				goto fail;
			break;
		case 8:
			if (http_json_string(&js, "\"body\"", &sp->body, &sp->bodylen) != 0)
				goto fail;
			sp->has_body = 1;
			break;
		}
		free(key);
		key = NULL;
		http_json_skip(&js);
		if (js.p < js.end && *js.p == ',') {
			js.p++;
			continue;
		}
		if (js.p < js.end && *js.p == '}') {
			js.p++;
			break;
		}
		snprintf(js.err, sizeof js.err, "',' or '}' expected");
		goto fail;
	}
done:
	http_json_skip(&js);
	if (js.p != js.end) {
		snprintf(js.err, sizeof js.err, "text after the object");
		goto fail;
	}
	if (sp->url == NULL) {
		snprintf(js.err, sizeof js.err, "\"url\" is missing");
		goto fail;
	}
	return (0);
fail:
	free(key);
	snprintf(err, errlen, "http: payload: %s", js.err);
	return (-1);
}

/* Does url start with http:// or https:// (any case)? */
static int
http_scheme_ok(const char *url)
{
	return (strncasecmp(url, "http://", 7) == 0 ||
	    strncasecmp(url, "https://", 8) == 0);
}

/*
 * A payload into *sp: a URL (blanks around it), or a JSON object. 0, or -1 with err
 * saying what is wrong, naming the field.
 */
static int
http_parse(const char *in, size_t len, struct http_spec *sp, char *err, size_t errlen)
{
	const char	*p = in, *end = in + len;
	size_t		 i;

	memset(sp, 0, sizeof *sp);
	while (p < end && isspace((unsigned char)*p))
		p++;
	while (end > p && isspace((unsigned char)end[-1]))
		end--;
	if (p < end && *p == '{') {
		if (http_parse_json(p, (size_t)(end - p), sp, err, errlen) != 0)
			goto fail;
	} else {
		for (i = 0; p + i < end; i++) {
			if (isspace((unsigned char)p[i]) || p[i] == '\0' ||
			    (unsigned char)p[i] < 0x20) {
				snprintf(err, errlen, "http: payload: a URL has no blanks "
				    "or control characters (or send a JSON object)");
				goto fail;
			}
		}
		if ((sp->url = strndup(p, (size_t)(end - p))) == NULL) {
			snprintf(err, errlen, "http: out of memory");
			goto fail;
		}
	}
	if (sp->method[0] == '\0')
		snprintf(sp->method, sizeof sp->method, "%s", sp->has_body ? "POST" : "GET");
	if (!http_scheme_ok(sp->url)) {
		snprintf(err, errlen, "http: payload: url '%.*s' is not http:// or "
		    "https://", HTTP_ERR_URL_MAX, sp->url);
		goto fail;
	}
	return (0);
fail:
	http_spec_free(sp);
	return (-1);
}

/*
 * The master's part (issue 15): the key of an http job submitted without one, its
 * URL's host, "host[:port]" as written but lowercased, without userinfo, so that the
 * queue's per-key limits and a Retry-After's pause (dispatch_result) hold one host back,
 * not the queue. Its length in buf (not NUL-terminated), or 0: no key, for a payload
 * http_parse refuses (its worker fails it, saying why), or a host that is empty,
 * longer than size or not printable ASCII (a key's bytes, jobpoold.h).
 */
size_t
handler_http_key(const void *data, size_t len, char *buf, size_t size)
{
	struct http_spec	 sp;
	const char		*h, *end, *p;
	char			 err[8];
	size_t			 n = 0, i;

	if (len == 0 || http_parse(data, len, &sp, err, sizeof err) != 0)
		return (0);
	h = strstr(sp.url, "://") + 3;	/* http_scheme_ok: there is one */
	end = h + strcspn(h, "/?#");
	for (p = end; p > h; p--) {
		if (p[-1] == '@') {
			h = p;	/* the last '@' ends the userinfo */
			break;
		}
	}
	if (end > h && end[-1] == ':')
		end--;		/* "host:" is "host" */
	if (end > h && (size_t)(end - h) <= size) {
		for (i = 0; h + i < end; i++) {
			if (h[i] < '!' || h[i] > '~')
				break;
			buf[i] = (char)tolower((unsigned char)h[i]);
		}
		if (h + i == end)
			n = i;
	}
	http_spec_free(&sp);
	return (n);
}

/* ----- requests ----- */

/* The body, bounded by http_max_response: past it the transfer is aborted. */
static size_t
http_write_cb(char *data, size_t size, size_t n, void *arg)
{
	struct http_req	*r = arg;
	size_t		 len = size * n;

	if (r->body.len + len > r->max) {
		r->too_big = 1;
		return (0);	/* CURLE_WRITE_ERROR */
	}
	if (obuf_add(&r->body, data, len) != 0)
		return (0);
	return (len);
}

/* Retry-After: seconds, or an HTTP date; what is left of it from now, capped. */
static uint32_t
http_retry_after(const char *v, size_t len)
{
	char		 buf[128];
	char		*end;
	unsigned long	 s;
	time_t		 t, now;

	while (len > 0 && isspace((unsigned char)*v)) {
		v++;
		len--;
	}
	while (len > 0 && isspace((unsigned char)v[len - 1]))
		len--;
	if (len == 0 || len >= sizeof buf)
		return (0);
	memcpy(buf, v, len);
	buf[len] = '\0';
	if (isdigit((unsigned char)buf[0])) {
		errno = 0;
		s = strtoul(buf, &end, 10);
		if (*end != '\0')
			return (0);
		if (errno == ERANGE || s > UINT16_MAX)
			s = UINT16_MAX;
		return ((uint32_t)s);
	}
	if ((t = cu.getdate(buf, NULL)) == -1)
		return (0);
	now = time(NULL);
	if (t <= now)
		return (0);
	return (t - now > UINT16_MAX ? UINT16_MAX : (uint32_t)(t - now));
}

/*
 * A Content-Type for STATUS, a key=value field: printable, without the blanks a media
 * type may have around its ';' (a quoted parameter with a blank loses it), bounded.
 */
static void
http_ctype(struct http_req *r, const char *v, size_t len)
{
	size_t	i, n = 0;

	for (i = 0; i < len && n < sizeof r->ctype - 1; i++) {
		if (v[i] > ' ' && v[i] < 0x7f)
			r->ctype[n++] = v[i];
	}
	r->ctype[n] = '\0';
}

/*
 * Each response header line: note Retry-After and Content-Type, and for "response"
 * keep the line; all of the last response only (a redirect's are forgotten).
 */
static size_t
http_header_cb(char *data, size_t size, size_t n, void *arg)
{
	struct http_req	*r = arg;
	size_t		 len = size * n;
	static const char rah[] = "retry-after:", cth[] = "content-type:";

	if (len > 5 && strncmp(data, "HTTP/", 5) == 0) {
		r->retry_after = 0;	/* a new response begins */
		r->ctype[0] = '\0';
		r->hdrs.len = 0;
		return (len);
	}
	if (len > sizeof rah - 1 && strncasecmp(data, rah, sizeof rah - 1) == 0)
		r->retry_after = http_retry_after(data + sizeof rah - 1,
		    len - (sizeof rah - 1));
	else if (len > sizeof cth - 1 && strncasecmp(data, cth, sizeof cth - 1) == 0)
		http_ctype(r, data + sizeof cth - 1, len - (sizeof cth - 1));
	/* Past the bound, lines are dropped: the rest of the response still counts. */
	if (r->output == CONFIG_HTTP_OUTPUT_RESPONSE && memchr(data, ':', len) != NULL &&
	    r->hdrs.len + len <= HTTP_HEADERS_MAX && obuf_add(&r->hdrs, data, len) != 0)
		return (0);
	return (len);
}

static void
http_req_free(struct http_state *st, struct http_req *r)
{
	if (r->easy != NULL) {
		cu.multi_remove_handle(st->multi, r->easy);
		cu.easy_cleanup(r->easy);
	}
	cu.slist_free_all(r->headers);
	free(r->url);
	free(r->body.buf);
	free(r->hdrs.buf);
	if (r->prev != NULL)
		r->prev->next = r->next;
	else if (st->reqs == r)
		st->reqs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	free(r);
}

/* Set up r's easy handle for sp; 0, or -1 with err. */
static int
http_req_setup(struct http_state *st, struct http_req *r, struct http_spec *sp,
    char *err, size_t errlen)
{
	const struct queue_config	*qc = st->qc;
	CURL				*e;
	struct curl_slist		*l;
	int				 i, bad = 0;

	if ((r->easy = e = cu.easy_init()) == NULL) {
		snprintf(err, errlen, "http: cannot make a request (out of memory)");
		return (-1);
	}
	for (i = 0; i < sp->nheaders; i++) {
		if ((l = cu.slist_append(r->headers, sp->headers[i])) == NULL) {
			snprintf(err, errlen, "http: out of memory");
			return (-1);
		}
		r->headers = l;
	}
	bad |= cu.easy_setopt(e, CURLOPT_URL, sp->url) != CURLE_OK;
	bad |= cu.easy_setopt(e, CURLOPT_PRIVATE, r) != CURLE_OK;
	bad |= cu.easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
	bad |= cu.easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
	bad |= cu.easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK;
	bad |= cu.easy_setopt(e, CURLOPT_FOLLOWLOCATION,
	    qc->http_max_redirects > 0 ? 1L : 0L) != CURLE_OK;
	bad |= cu.easy_setopt(e, CURLOPT_MAXREDIRS, (long)qc->http_max_redirects) !=
	    CURLE_OK;
	bad |= cu.easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)qc->http_timeout_ms) !=
	    CURLE_OK;
	bad |= cu.easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)qc->http_connect_timeout_ms) != CURLE_OK;
	bad |= cu.easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
	    (curl_off_t)qc->http_max_response) != CURLE_OK;
	bad |= cu.easy_setopt(e, CURLOPT_WRITEFUNCTION, http_write_cb) != CURLE_OK;
	bad |= cu.easy_setopt(e, CURLOPT_WRITEDATA, r) != CURLE_OK;
	bad |= cu.easy_setopt(e, CURLOPT_HEADERFUNCTION, http_header_cb) != CURLE_OK;
	bad |= cu.easy_setopt(e, CURLOPT_HEADERDATA, r) != CURLE_OK;
	bad |= cu.easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf) != CURLE_OK;
	bad |= cu.easy_setopt(e, CURLOPT_USERAGENT, st->ua) != CURLE_OK;
	bad |= cu.easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "") != CURLE_OK;
	if (r->headers != NULL)
		bad |= cu.easy_setopt(e, CURLOPT_HTTPHEADER, r->headers) != CURLE_OK;
	if (sp->has_body) {
		bad |= cu.easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)sp->bodylen) != CURLE_OK;
		bad |= cu.easy_setopt(e, CURLOPT_COPYPOSTFIELDS, sp->body) != CURLE_OK;
	}
	if (strcmp(sp->method, "GET") == 0 && !sp->has_body)
		;	/* curl's default */
	else if (strcmp(sp->method, "HEAD") == 0)
		bad |= cu.easy_setopt(e, CURLOPT_NOBODY, 1L) != CURLE_OK;
	else if (!(strcmp(sp->method, "POST") == 0 && sp->has_body))
		bad |= cu.easy_setopt(e, CURLOPT_CUSTOMREQUEST, sp->method) != CURLE_OK;
	if (bad) {
		snprintf(err, errlen, "http: cannot set up the request (libcurl refused "
		    "an option)");
		return (-1);
	}
	return (0);
}

/* handler.h's start: parse the payload and add the request to the multi handle. */
static void
http_start(void *state, uint64_t id, const char *in, size_t len)
{
	struct http_state	*st = state;
	struct http_spec	 sp;
	struct http_req		*r;
	char			 err[512];

	if (http_parse(in, len, &sp, err, sizeof err) != 0) {
		worker_done(id, FRAME_PERMANENT, err, strlen(err));
		return;
	}
	if ((r = calloc(1, sizeof *r)) == NULL) {
		http_spec_free(&sp);
		worker_done(id, FRAME_FAILED, "http: out of memory", 19);
		return;
	}
	r->id = id;
	r->max = st->qc->http_max_response;
	r->output = st->qc->http_output;
	memcpy(r->method, sp.method, sizeof r->method);
	r->next = st->reqs;
	if (st->reqs != NULL)
		st->reqs->prev = r;
	st->reqs = r;
	if (http_req_setup(st, r, &sp, err, sizeof err) != 0 ||
	    (r->url = strdup(sp.url)) == NULL) {
		http_spec_free(&sp);
		http_req_free(st, r);
		worker_done(id, FRAME_FAILED, err, strlen(err));
		return;
	}
	http_spec_free(&sp);
	if (cu.multi_add_handle(st->multi, r->easy) != CURLM_OK) {
		http_req_free(st, r);
		worker_done(id, FRAME_FAILED, "http: cannot start the request", 30);
	}
}

/* handler.h's cancel: drop the request; the worker answers the job. */
static void
http_cancel(void *state, uint64_t id)
{
	struct http_state	*st = state;
	struct http_req		*r;

	for (r = st->reqs; r != NULL; r = r->next) {
		if (r->id == id) {
			http_req_free(st, r);
			return;
		}
	}
}

/* Is a transfer error worth a retry (the network, the server's load), or final? */
static int
http_error_status(CURLcode rc)
{
	switch (rc) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_TOO_MANY_REDIRECTS:
	case CURLE_FILESIZE_EXCEEDED:
	case CURLE_BAD_CONTENT_ENCODING:
		return (FRAME_PERMANENT);
	default:
		return (FRAME_FAILED);
	}
}

/* ----- http_output = "response" ----- */

/* Is b well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF)? */
static int
http_utf8(const unsigned char *b, size_t len)
{
	size_t		i = 0, n, k;
	uint32_t	c, min;

	while (i < len) {
		c = b[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		/* The lead byte: how many bytes follow, the least code point they make. */
		if ((c & 0xe0) == 0xc0)
			n = 1;
		else if ((c & 0xf0) == 0xe0)
			n = 2;
		else if ((c & 0xf8) == 0xf0)
			n = 3;
		else
			return (0);
		c &= 0x3f >> n;
		min = n == 1 ? 0x80 : n == 2 ? 0x800 : 0x10000;
		if (len - i - 1 < n)
			return (0);
		for (k = 1; k <= n; k++) {
			if ((b[i + k] & 0xc0) != 0x80)
				return (0);
			c = (c << 6) | (b[i + k] & 0x3f);
		}
		if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return (0);
		i += n + 1;
	}
	return (1);
}

/*
 * s escaped for the inside of a JSON string: s is UTF-8, or with latin1 (a header
 * value that is not UTF-8, RFC 9110's obs-text) each byte past 0x7f is a \u00XX.
 */
static int
http_json_esc(struct jobpool_output *o, const char *s, size_t len, int latin1)
{
	static const char	hex[] = "0123456789abcdef";
	size_t			i, start = 0;
	unsigned char		c;
	char			esc[6] = { '\\', 'u', '0', '0', 0, 0 };

	if (obuf_reserve(o, len) != 0)
		return (-1);
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f && (c < 0x80 || !latin1))
			continue;
		if (obuf_add(o, s + start, i - start) != 0)
			return (-1);
		start = i + 1;
		if (c == '"' || c == '\\') {
			esc[1] = (char)c;
			if (obuf_add(o, esc, 2) != 0)
				return (-1);
			esc[1] = 'u';
			continue;
		}
		esc[4] = hex[c >> 4];
		esc[5] = hex[c & 0xf];
		if (obuf_add(o, esc, sizeof esc) != 0)
			return (-1);
	}
	return (obuf_add(o, s + start, len - start));
}

/* s as a JSON string, quoted; bytes that are not UTF-8 taken as Latin-1. */
static int
http_json_str(struct jobpool_output *o, const char *s, size_t len)
{
	if (obuf_add_lit(o, "\"") != 0 || http_json_esc(o, s, len,
	    !http_utf8((const unsigned char *)s, len)) != 0)
		return (-1);
	return (obuf_add_lit(o, "\""));
}

/* b in base64 (RFC 4648, padded), quoted: a body that is not UTF-8. */
static int
http_json_base64(struct jobpool_output *o, const unsigned char *b, size_t len)
{
	static const char	al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789+/";
	size_t			i;
	uint32_t		v;
	char			q[4];

	if (obuf_reserve(o, (len + 2) / 3 * 4 + 2) != 0 || obuf_add_lit(o, "\"") != 0)
		return (-1);
	for (i = 0; i < len; i += 3) {
		v = (uint32_t)b[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)b[i + 1] << 8;
		if (i + 2 < len)
			v |= b[i + 2];
		q[0] = al[v >> 18];
		q[1] = al[(v >> 12) & 63];
		q[2] = i + 1 < len ? al[(v >> 6) & 63] : '=';
		q[3] = i + 2 < len ? al[v & 63] : '=';
		if (obuf_add(o, q, sizeof q) != 0)
			return (-1);
	}
	return (obuf_add_lit(o, "\""));
}

/* One header line of h, at *at: its name and value, trimmed; 0 at the end. */
static int
http_header_next(const struct jobpool_output *h, size_t *at, const char **name,
    size_t *nlen, const char **value, size_t *vlen)
{
	const char	*p, *end, *colon, *eol;

	if (*at >= h->len)
		return (0);
	p = h->buf + *at;
	end = h->buf + h->len;
	if ((eol = memchr(p, '\n', end - p)) == NULL)
		eol = end;
	*at = eol - h->buf + 1;
	if ((colon = memchr(p, ':', eol - p)) == NULL) {
		*nlen = 0;
		return (1);
	}
	*name = p;
	*nlen = colon - p;
	p = colon + 1;
	while (p < eol && (*p == ' ' || *p == '\t'))
		p++;
	while (eol > p && (eol[-1] == '\r' || eol[-1] == ' ' || eol[-1] == '\t'))
		eol--;
	*value = p;
	*vlen = eol - p;
	return (1);
}

/*
 * The response as one JSON object: {"status": 200, "headers": {"name": "value", ...},
 * "body": "..."}. Header names in lower case, each once: a repeated header's values
 * joined with ", " (RFC 9110 5.3). A body that is not UTF-8 comes as "body_base64"
 * instead of "body", so that any response is valid JSON.
 */
static int
http_response_json(struct jobpool_output *o, long code,
    const struct jobpool_output *h, const struct jobpool_output *body)
{
	const char	*name = NULL, *value = NULL, *n2 = NULL, *v2 = NULL;
	size_t		 at = 0, at2, nlen, vlen, n2len, v2len, i;
	char		*lname;
	int		 first = 1, seen, bad = 0;

	bad |= obuf_printf(o, "{\"status\":%ld,\"headers\":{", code) != 0;
	while (!bad && http_header_next(h, &at, &name, &nlen, &value, &vlen)) {
		if (nlen == 0)
			continue;
		/* Told already with an earlier line of the same name? */
		at2 = 0;
		seen = 0;
		while (http_header_next(h, &at2, &n2, &n2len, &v2, &v2len) &&
		    at2 < at) {
			if (n2len == nlen && strncasecmp(n2, name, nlen) == 0) {
				seen = 1;
				break;
			}
		}
		if (seen)
			continue;
		if ((lname = malloc(nlen)) == NULL)
			return (-1);
		for (i = 0; i < nlen; i++)
			lname[i] = (char)tolower((unsigned char)name[i]);
		bad |= (!first && obuf_add_lit(o, ",") != 0) ||
		    http_json_str(o, lname, nlen) != 0 || obuf_add_lit(o, ":\"") != 0 ||
		    http_json_esc(o, value, vlen, !http_utf8((const unsigned char *)value,
		    vlen)) != 0;
		free(lname);
		first = 0;
		/* The values of the later lines of the name join this one. */
		at2 = at;
		while (!bad && http_header_next(h, &at2, &n2, &n2len, &v2, &v2len)) {
			if (n2len == nlen && strncasecmp(n2, name, nlen) == 0)
				bad |= obuf_add_lit(o, ", ") != 0 ||
				    http_json_esc(o, v2, v2len, !http_utf8(
				    (const unsigned char *)v2, v2len)) != 0;
		}
		bad |= obuf_add_lit(o, "\"") != 0;
	}
	if (bad)
		return (-1);
	if (http_utf8((const unsigned char *)body->buf, body->len))
		bad |= obuf_add_lit(o, "},\"body\":") != 0 ||
		    http_json_str(o, body->buf, body->len) != 0;
	else
		bad |= obuf_add_lit(o, "},\"body_base64\":") != 0 ||
		    http_json_base64(o, (const unsigned char *)body->buf, body->len) != 0;
	return (bad || obuf_add_lit(o, "}") != 0 ? -1 : 0);
}

/* r is done (rc): answer its job, then forget it. */
static void
http_finish(struct http_state *st, struct http_req *r, CURLcode rc)
{
	struct jobpool_output	 e = { NULL, 0, 0 };
	long			 code = 0;
	const char		*reason;
	int			 status;

	cu.easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
	if (code > 0)
		worker_http_status(r->id, (unsigned)code, r->ctype, r->body.len);
	if (rc == CURLE_OK && code >= 200 && code < 300) {
		if (r->output == CONFIG_HTTP_OUTPUT_BODY)
			worker_done(r->id, FRAME_OK, r->body.buf, r->body.len);
		else if (http_response_json(&e, code, &r->hdrs, &r->body) != 0)
			worker_done(r->id, FRAME_FAILED, "http: out of memory", 19);
		else
			worker_done(r->id, FRAME_OK, e.buf, e.len);
		goto out;
	}
	obuf_printf(&e, "http: %s %.*s: ", r->method, HTTP_ERR_URL_MAX, r->url);
	if (r->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
		obuf_printf(&e, "the response is larger than http_max_response (%u bytes)",
		    r->max);
		status = FRAME_PERMANENT;
	} else if (rc != CURLE_OK) {
		if (rc == CURLE_OPERATION_TIMEDOUT)
			obuf_printf(&e, "timed out (http_timeout %u ms, http_connect_"
			    "timeout %u ms): %s", st->qc->http_timeout_ms,
			    st->qc->http_connect_timeout_ms, r->errbuf[0] != '\0' ?
			    r->errbuf : cu.easy_strerror(rc));
		else
			obuf_printf(&e, "%s", r->errbuf[0] != '\0' ? r->errbuf :
			    cu.easy_strerror(rc));
		status = http_error_status(rc);
	} else {
		/* 429, 503 and other 5xx: the server may answer later; the rest will not. */
		status = code == 429 || code >= 500 ? FRAME_FAILED : FRAME_PERMANENT;
		reason = code == 429 ? " Too Many Requests" : code == 503 ?
		    " Service Unavailable" : code == 404 ? " Not Found" : "";
		obuf_printf(&e, "HTTP %ld%s", code, reason);
		if (r->retry_after > 0 && status == FRAME_FAILED)
			obuf_printf(&e, " (Retry-After: %u s)", r->retry_after);
		if (r->body.len > 0)
			obuf_printf(&e, ": %.*s", (int)(r->body.len > 200 ? 200 :
			    r->body.len), r->body.buf);
	}
	if (e.buf == NULL)
		worker_done(r->id, FRAME_FAILED, "http: out of memory", 19);
	else
		worker_done_after(r->id, status, status == FRAME_FAILED ?
		    r->retry_after : 0, e.buf, e.len);
out:
	free(e.buf);
	http_req_free(st, r);
}

/* handler.h's wait: run the transfers until one ends or fd is readable. */
static void
http_wait(void *state, int fd)
{
	struct http_state	*st = state;
	struct curl_waitfd	 wfd = { fd, CURL_WAIT_POLLIN, 0 };
	struct CURLMsg		*m;
	struct http_req		*r;
	int			 running, left;
	CURLcode		 rc;

	(void)cu.multi_poll(st->multi, fd >= 0 ? &wfd : NULL, fd >= 0 ? 1 : 0,
	    HTTP_IDLE_POLL_MS, NULL);
	(void)cu.multi_perform(st->multi, &running);
	while ((m = cu.multi_info_read(st->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		rc = m->data.result;
		r = NULL;
		cu.easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		if (r != NULL)
			http_finish(st, r, rc);
	}
}

static int
http_init(const struct config *cf, const struct queue_config *qc, const char *arg,
    void **state, char **cause)
{
	struct http_state	*st;
	long			 per_host;

	if (http_load(cause) != 0)
		return (-1);
	if (cu.global_init(CURL_GLOBAL_DEFAULT) != 0) {
		*cause = strdup("http: libcurl cannot start (curl_global_init)");
		return (-1);
	}
	if ((st = calloc(1, sizeof *st)) == NULL || (st->multi = cu.multi_init()) ==
	    NULL) {
		free(st);
		*cause = strdup("http: out of memory");
		return (-1);
	}
	st->qc = qc;
	snprintf(st->ua, sizeof st->ua, "jobpool/%s", PACKAGE_VERSION);
	/* Connections kept alive and reused per host, as many as run at once. */
	per_host = qc->http_max_host_connections > 0 ?
	    (long)qc->http_max_host_connections : (long)qc->concurrency;
	cu.multi_setopt(st->multi, CURLMOPT_MAX_HOST_CONNECTIONS, per_host);
	cu.multi_setopt(st->multi, CURLMOPT_MAXCONNECTS, (long)qc->concurrency);
	*state = st;
	return (0);
}

static void
http_fini(void *state)
{
	struct http_state	*st = state;

	if (st == NULL)
		return;
	while (st->reqs != NULL)
		http_req_free(st, st->reqs);
	cu.multi_cleanup(st->multi);
	free(st);
	cu.global_cleanup();
}

static const struct handler handler_http = {
	.name = "http",
	.init = http_init,
	.fini = http_fini,
	.start = http_start,
	.cancel = http_cancel,
	.wait = http_wait,
};

/* The http handler (handler = "http"). */
const struct handler *
handler_http_find(void)
{
	return (&handler_http);
}
