/*
 * check_sha256.c: unit tests for daemon/sha256.c: the FIPS 180-4 example messages,
 * the padding edges around the 56-byte and 64-byte marks, and incremental updates
 * split at every offset (across block boundaries) giving the one-shot digest.
 */

#include "autoconf.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sha256.h"

/* The 448-bit and 896-bit messages of FIPS 180-4's examples. */
#define MSG448	"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
#define MSG896	"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn" \
		"hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"

/* A digest as lowercase hex, into hex (65 bytes). */
static void
to_hex(const unsigned char d[SHA256_DIGEST_LEN], char hex[2 * SHA256_DIGEST_LEN + 1])
{
	int	i;

	for (i = 0; i < SHA256_DIGEST_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

/* The digest of data in one update, as hex. */
static void
digest_hex(const void *data, size_t len, char hex[2 * SHA256_DIGEST_LEN + 1])
{
	struct sha256	s;
	unsigned char	d[SHA256_DIGEST_LEN];

	sha256_init(&s);
	sha256_update(&s, data, len);
	sha256_final(&s, d);
	to_hex(d, hex);
}

START_TEST(test_fips_empty)
{
	char	hex[65];

	digest_hex("", 0, hex);
	ck_assert_str_eq(hex,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}
END_TEST

START_TEST(test_fips_abc)
{
	char	hex[65];

	digest_hex("abc", 3, hex);
	ck_assert_str_eq(hex,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
END_TEST

START_TEST(test_fips_448)
{
	char	hex[65];

	ck_assert_uint_eq(strlen(MSG448), 56);
	digest_hex(MSG448, strlen(MSG448), hex);
	ck_assert_str_eq(hex,
	    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}
END_TEST

START_TEST(test_fips_896)
{
	char	hex[65];

	ck_assert_uint_eq(strlen(MSG896), 112);
	digest_hex(MSG896, strlen(MSG896), hex);
	ck_assert_str_eq(hex,
	    "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}
END_TEST

/* One million 'a': once in one update, once in 1000-byte updates (not block-aligned). */
START_TEST(test_fips_million_a)
{
	static const char	want[] =
	    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
	struct sha256		s;
	unsigned char		d[SHA256_DIGEST_LEN];
	char			hex[65], *buf;
	int			i;

	buf = malloc(1000000);
	ck_assert_ptr_nonnull(buf);
	memset(buf, 'a', 1000000);
	digest_hex(buf, 1000000, hex);
	ck_assert_str_eq(hex, want);

	sha256_init(&s);
	for (i = 0; i < 1000; i++)
		sha256_update(&s, buf, 1000);
	ck_assert_uint_eq(s.bytes, 1000000);
	sha256_final(&s, d);
	to_hex(d, hex);
	ck_assert_str_eq(hex, want);
	free(buf);
}
END_TEST

/*
 * Lengths at the padding edges: 55 is the longest that pads in one block, 56 needs a
 * second; 63, 64 and 65 straddle a block; 119 and 120 do the same one block later.
 * The digests are those of sha256sum(1) over that many 'a'.
 */
START_TEST(test_padding_edges)
{
	static const struct {
		size_t		 len;
		const char	*hex;
	} v[] = {
		{ 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318" },
		{ 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a" },
		{ 57, "f13b2d724659eb3bf47f2dd6af1accc87b81f09f59f2b75e5c0bed6589dfe8c6" },
		{ 63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34" },
		{ 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb" },
		{ 65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0" },
		{ 119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb" },
		{ 120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c" },
		{ 128, "6836cf13bac400e9105071cd6af47084dfacad4e5e302c94bfed24e013afb73e" },
	};
	char	buf[128], hex[65];
	size_t	i;

	memset(buf, 'a', sizeof buf);
	for (i = 0; i < sizeof v / sizeof v[0]; i++) {
		digest_hex(buf, v[i].len, hex);
		ck_assert_msg(strcmp(hex, v[i].hex) == 0, "length %zu: %s", v[i].len, hex);
	}
}
END_TEST

/* Every byte value, three times over (768 bytes): no sign or masking slips. */
START_TEST(test_all_bytes)
{
	unsigned char	buf[768];
	char		hex[65];
	size_t		i;

	for (i = 0; i < sizeof buf; i++)
		buf[i] = (unsigned char)i;
	digest_hex(buf, sizeof buf, hex);
	ck_assert_str_eq(hex,
	    "f3a25aa93aa2fbba28d79260535bbd6a5eb0fc1c24a8b0f04e12b484c1dfe363");
}
END_TEST

/* A message of n bytes split into two updates at every offset gives the same digest. */
START_TEST(test_split_every_offset)
{
	unsigned char	msg[200], want[SHA256_DIGEST_LEN], d[SHA256_DIGEST_LEN];
	struct sha256	s;
	size_t		n, cut;

	for (n = 0; n < sizeof msg; n++)
		msg[n] = (unsigned char)(n * 7 + 3);
	/* Lengths that end inside the first, second and third blocks and on their edges. */
	for (n = 0; n <= sizeof msg; n++) {
		sha256_init(&s);
		sha256_update(&s, msg, n);
		sha256_final(&s, want);
		for (cut = 0; cut <= n; cut++) {
			sha256_init(&s);
			sha256_update(&s, msg, cut);
			sha256_update(&s, msg + cut, n - cut);
			sha256_final(&s, d);
			ck_assert_msg(memcmp(d, want, sizeof d) == 0,
			    "length %zu cut at %zu", n, cut);
		}
	}
}
END_TEST

/* Three updates, both cuts anywhere, and empty updates between them. */
START_TEST(test_split_three_ways)
{
	unsigned char	msg[150], want[SHA256_DIGEST_LEN], d[SHA256_DIGEST_LEN];
	struct sha256	s;
	size_t		a, b;

	for (a = 0; a < sizeof msg; a++)
		msg[a] = (unsigned char)(a ^ 0xa5);
	sha256_init(&s);
	sha256_update(&s, msg, sizeof msg);
	sha256_final(&s, want);
	for (a = 0; a <= sizeof msg; a++) {
		for (b = a; b <= sizeof msg; b++) {
			sha256_init(&s);
			sha256_update(&s, msg, a);
			sha256_update(&s, msg + a, 0);
			sha256_update(&s, msg + a, b - a);
			sha256_update(&s, msg + b, sizeof msg - b);
			sha256_final(&s, d);
			ck_assert_msg(memcmp(d, want, sizeof d) == 0, "cuts at %zu, %zu", a, b);
		}
	}
}
END_TEST

/* One byte at a time is the same as all at once. */
START_TEST(test_byte_at_a_time)
{
	unsigned char	d[SHA256_DIGEST_LEN];
	struct sha256	s;
	char		hex[65];
	size_t		i;

	sha256_init(&s);
	for (i = 0; i < strlen(MSG896); i++)
		sha256_update(&s, MSG896 + i, 1);
	ck_assert_uint_eq(s.bytes, 112);
	sha256_final(&s, d);
	to_hex(d, hex);
	ck_assert_str_eq(hex,
	    "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}
END_TEST

/* sha256_init starts over: a context used once gives the right digest again. */
START_TEST(test_reinit)
{
	unsigned char	d[SHA256_DIGEST_LEN];
	struct sha256	s;
	char		hex[65];

	sha256_init(&s);
	sha256_update(&s, MSG448, strlen(MSG448));
	sha256_update(&s, "xyz", 3);
	sha256_final(&s, d);
	sha256_init(&s);
	sha256_update(&s, "abc", 3);
	sha256_final(&s, d);
	to_hex(d, hex);
	ck_assert_str_eq(hex,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
END_TEST

static Suite *
sha256_suite(void)
{
	Suite	*s = suite_create("sha256");
	TCase	*tc = tcase_create("core");

	tcase_add_test(tc, test_fips_empty);
	tcase_add_test(tc, test_fips_abc);
	tcase_add_test(tc, test_fips_448);
	tcase_add_test(tc, test_fips_896);
	tcase_add_test(tc, test_fips_million_a);
	tcase_add_test(tc, test_padding_edges);
	tcase_add_test(tc, test_all_bytes);
	tcase_add_test(tc, test_split_every_offset);
	tcase_add_test(tc, test_split_three_ways);
	tcase_add_test(tc, test_byte_at_a_time);
	tcase_add_test(tc, test_reinit);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(sha256_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
