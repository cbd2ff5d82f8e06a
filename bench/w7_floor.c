/*
 * w7_floor.c: W7's floor (bench/w7_fetch.sh): a bare libcurl multi loop, N GETs of
 * URL with C in flight, on one multi handle whose connections are kept alive, as
 * jobpool's http handler makes them, but with nothing around it: no daemon, no job,
 * no pipe. Prints "jobs_per_s=R cpu_s=S per_req_us=U".
 *
 *   w7_floor URL N C
 */

#include <sys/resource.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <curl/curl.h>

static size_t
sink(char *p, size_t s, size_t n, void *a)
{
	return (s * n);
}

static CURL *
easy(const char *url)
{
	CURL	*e = curl_easy_init();

	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	return (e);
}

int
main(int argc, char **argv)
{
	struct timespec	 t0, t1;
	struct rusage	 ru;
	CURLM		*m;
	CURLMsg		*msg;
	long		 n, c, started = 0, done = 0, failed = 0, code, i;
	int		 running, left;
	double		 secs, cpu;

	if (argc != 4) {
		fprintf(stderr, "usage: w7_floor URL N C\n");
		return (64);
	}
	n = atol(argv[2]);
	c = atol(argv[3]);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	m = curl_multi_init();
	curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, c);
	curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, c);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < c && started < n; i++, started++)
		curl_multi_add_handle(m, easy(argv[1]));
	while (done < n) {
		curl_multi_poll(m, NULL, 0, 1000, NULL);
		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			code = 0;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
			if (msg->data.result != CURLE_OK || code != 200)
				failed++;
			done++;
			curl_multi_remove_handle(m, msg->easy_handle);
			if (started < n) {
				/* The same handle again: its connection stays in the cache. */
				curl_multi_add_handle(m, msg->easy_handle);
				started++;
			} else
				curl_easy_cleanup(msg->easy_handle);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	getrusage(RUSAGE_SELF, &ru);
	secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	printf("jobs_per_s=%.0f cpu_s=%.3f per_req_us=%.1f failed=%ld\n", n / secs, cpu,
	    cpu * 1e6 / n, failed);
	curl_multi_cleanup(m);
	return (failed != 0);
}
