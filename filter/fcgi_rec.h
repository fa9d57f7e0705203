/* fcgi_rec.h -- the FastCGI 1.0 wire format: record headers, a streaming record parser, the
 * name-value pair encoding and the records the application sends
 *
 * The parser is a pull parser over whatever bytes arrived: it never holds a record, only the
 * 8 header bytes and the counts of content and padding still to come, so a record of 65535
 * content bytes costs nothing to buffer and a record cut anywhere resumes where it stopped.
 */
#ifndef FILTER_FCGI_REC_H
#define FILTER_FCGI_REC_H

#include <stddef.h>
#include <stdint.h>

#define FCGI_VERSION_1 1
#define FCGI_HEADER_LEN 8
#define FCGI_CONTENT_MAX 65535

enum {
    FCGI_BEGIN_REQUEST = 1,
    FCGI_ABORT_REQUEST = 2,
    FCGI_END_REQUEST = 3,
    FCGI_PARAMS = 4,
    FCGI_STDIN = 5,
    FCGI_STDOUT = 6,
    FCGI_STDERR = 7,
    FCGI_DATA = 8,
    FCGI_GET_VALUES = 9,
    FCGI_GET_VALUES_RESULT = 10,
    FCGI_UNKNOWN_TYPE = 11,
};

enum { FCGI_RESPONDER = 1, FCGI_AUTHORIZER = 2, FCGI_FILTER = 3 };
#define FCGI_KEEP_CONN 1
enum {
    FCGI_REQUEST_COMPLETE = 0,
    FCGI_CANT_MPX_CONN = 1,
    FCGI_OVERLOADED = 2,
    FCGI_UNKNOWN_ROLE = 3,
};

typedef enum fcgi_ev {
    FCGI_EV_NONE = 0, /* every byte given was consumed; more are needed */
    FCGI_EV_HEADER,   /* a record header: type, id, content_len are set */
    FCGI_EV_CONTENT,  /* data/len: the next piece of the current record's content */
    FCGI_EV_END,      /* the current record ended (its padding skipped) */
    FCGI_EV_BAD,      /* a header whose version is not 1: the stream cannot be trusted */
} fcgi_ev;

typedef struct fcgi_parser {
    uint8_t hdr[FCGI_HEADER_LEN];
    size_t hdr_got;      /* header bytes collected; FCGI_HEADER_LEN once inside a record */
    size_t content_left; /* content bytes of the current record still to come */
    size_t pad_left;     /* then padding bytes */
    int type;            /* of the current record */
    unsigned id;
    size_t content_len;
    int mid_record; /* between a HEADER event and its END */
} fcgi_parser;

/* Consumes bytes of buf[0..n) up to the next event and returns how many; *ev says which
 * (FCGI_EV_NONE when all n were consumed without one). For FCGI_EV_CONTENT, *data and *len
 * are the piece (inside buf). After FCGI_EV_BAD the parser must not be used again. */
size_t fcgi_parse(fcgi_parser *p, const uint8_t *buf, size_t n, fcgi_ev *ev, const uint8_t **data,
                  size_t *len);

/* Writes a record header for type, id and content_len (with no padding) into out. */
void fcgi_header(uint8_t out[FCGI_HEADER_LEN], int type, unsigned id, size_t content_len);

/* An FCGI_END_REQUEST record (16 bytes) into out. */
void fcgi_end_request(uint8_t out[16], unsigned id, uint32_t app_status, int protocol_status);

/* An FCGI_UNKNOWN_TYPE record (16 bytes) into out. */
void fcgi_unknown_type(uint8_t out[16], int type);

/* Reads one name-value pair from buf[0..n): *name, *nlen, *value, *vlen point inside buf.
 * Returns the bytes it took, or 0 when the pair is malformed or cut. */
size_t fcgi_pair(const uint8_t *buf, size_t n, const uint8_t **name, size_t *nlen,
                 const uint8_t **value, size_t *vlen);

/* The FCGI_GET_VALUES_RESULT record answering the query in q[0..qn) into out (size bytes):
 * FCGI_MAX_CONNS, FCGI_MAX_REQS (both max_conns) and FCGI_MPXS_CONNS (0); other names are left
 * out, as the specification says. Returns the record's length. */
size_t fcgi_values_result(uint8_t *out, size_t size, const uint8_t *q, size_t qn, int max_conns);

#endif
