/*
 * sha256.h: SHA-256 (FIPS 180-4), for the built-in sha256 handler.
 */

#ifndef SHA256_H
#define SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN	32

struct sha256 {
	uint32_t	state[8];
	uint64_t	bytes;
	unsigned char	block[64];
	size_t		fill;
};

void	sha256_init(struct sha256 *s);
void	sha256_update(struct sha256 *s, const void *data, size_t len);
void	sha256_final(struct sha256 *s, unsigned char digest[SHA256_DIGEST_LEN]);

#endif /* SHA256_H */
