/*
 * journal.h: the write-ahead log that lets accepted jobs survive a restart or a crash
 * (journal.c; the file format is in HACKING.md, the settings in jobpool.conf(5)).
 *
 * The master appends a record for every change of a job that must outlive the process
 * (accepted, finished, dead, queued again); a writer thread writes them, and fsyncs as
 * journal_fsync says. A reply that depends on a record (OK <id> to SUBMIT, say) is held
 * by server.c until the batch holding that record is as durable as the policy says:
 * journal_batch() names that batch, journal_durable() the last one done.
 */

#ifndef JOURNAL_H
#define JOURNAL_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct evbuffer;
struct job;

/* 1 once journal_open() has succeeded (for the life of the process). */
extern int		journal_on;
/* Records appended so far: a request that changed it needs its reply held. */
extern uint64_t		journal_seq;

/*
 * As root, before privileges are dropped: make the directory (0700) and give it to the
 * user the daemon will run as. 0, or -1 with *cause.
 */
int		journal_prepare(const struct config *cf, char **cause);
/*
 * Lock the directory, read every journal file in it, put the jobs they hold back in
 * their queues (the queues exist, no worker runs yet), write a fresh file holding just
 * those, and start the writer. 0, or -1 with *cause (the daemon must not start).
 */
int		journal_open(const struct config *cf, char **cause);
/* Take the reloadable settings (fsync policy, interval, compaction size). */
void		journal_reconfigure(const struct config *cf);
/* After a reload: queue the recovered jobs whose queue exists now. */
void		journal_adopt(void);
/* Write what is pending, fsync, stop the writer (at exit). */
void		journal_close(void);

/* Records. Each is a no-op when the journal is off. */
void		journal_submit(const struct job *j);
void		journal_end(const struct job *j);
void		journal_dead(const struct job *j);
void		journal_retry(const struct job *j);
struct idem_tok;
/* idem.c: a token was given, its job ended, or it lives again (an IDEM record). */
void		journal_idem(const struct idem_tok *t);

/* The batch that will hold the records appended so far, and the last durable one. */
uint64_t	journal_batch(void);
uint64_t	journal_durable(void);
/* The batch that holds the last record appended (0: none yet). */
uint64_t	journal_last_batch(void);
/* NULL, or why new jobs cannot be accepted now (the journal cannot be written). */
const char	*journal_refusal(void);
/* What STATS shows of the journal; 0, or -1 when there is none. */
struct journal_info {
	const char	*dir;
	const char	*fsync;		/* never, interval, always */
	const char	*refusal;	/* NULL, or why new jobs are refused */
	uint64_t	 file;		/* N of journal.N */
	uint64_t	 bytes;		/* of that file */
	uint64_t	 live_bytes;	/* the part that is records of live jobs */
	uint64_t	 records;
	uint64_t	 batches;	/* handed to the writer */
	uint64_t	 durable;	/* the last durable batch */
	uint64_t	 fsyncs;
	uint64_t	 written;	/* bytes written since the start */
	uint64_t	 compactions;
	uint64_t	 recovered;	/* jobs read back at the start */
	uint32_t	 unknown_queue;	/* kept for queues the config has not */
	uint64_t	 damaged;	/* damaged regions skipped at the start */
	uint64_t	 damaged_bytes;	/* bytes in them */
	uint64_t	 damaged_files;	/* files kept aside as journal.N.damaged */
	const char	*damaged_file;	/* the last of them, NULL if none */
};
int		journal_info(struct journal_info *ji);
/* How long the writer's fdatasyncs took (us), copied into h; 0, or -1 without a journal. */
struct hist;
int		journal_fsync_hist(struct hist *h);

/* CRC-32C (Castagnoli) of the records; exposed for the unit tests. */
uint32_t	journal_crc32c(uint32_t crc, const void *buf, size_t len);

/*
 * What reading one journal file found: the records applied, and the damaged regions
 * (runs of bytes that are no record: a bad header, records cut short or changed, junk)
 * skipped on the way; every byte of the file is in one or the other. Recovery fills one
 * per file; journal_replay() reads a file's bytes as recovery does, into a set of its
 * own that it frees, for the fuzzer and the tests: 0, or -1 if out of memory.
 */
struct journal_replay {
	int		 naive;		/* in: every crc from scratch (tests) */
	uint64_t	 records;	/* applied */
	uint64_t	 record_bytes;	/* their bytes, headers included */
	uint64_t	 regions;	/* damaged regions */
	uint64_t	 damaged_bytes;	/* bytes in them (a bad file header included) */
	uint64_t	 first_damage;	/* offset of the first region */
	const char	*why;		/* what was wrong there, NULL if nothing */
	uint64_t	 checks;	/* crcs checked: frames and resync candidates */
	uint64_t	 hashed;	/* bytes those crcs ran over, records included */
	uint64_t	 jobs;		/* journal_replay: live jobs at the end */
	uint64_t	 dead;		/* of them dead */
	uint64_t	 payload_bytes;	/* their payloads and reasons */
	uint64_t	 next_id;
	uint64_t	 tokens;	/* journal_replay: idempotency tokens (IDEM) */
};
/* A replay hashes at most the file four times, plus this many bytes per crc checked. */
#define JOURNAL_RESYNC_COST	512
int		journal_replay(const void *buf, size_t len, struct journal_replay *jr);

#endif /* JOURNAL_H */
