/*
 * Prepared statements the way C-library applications use them: prepared once, the
 * parameters bound once, executed in a loop. libmariadb sends the parameter types
 * only with a statement's first execution, so every later execution relies on the
 * server remembering them.
 *
 * Each round: send a BLOB as long data and insert (INT, VARCHAR, DOUBLE, NULL, BLOB);
 * read the row back with a second statement and compare every value; insert three
 * rows with one bulk (array) execution. Runs until STOP_FILE exists (or MAX_SECONDS
 * pass), then prints one line:
 *   rounds=R executions=E errors=N mismatches=M inserted=I bulk_rows=B
 * Every error is printed to stderr as it happens; the program never stops on one.
 *
 * usage: ps_loop HOST PORT USER PASSWORD DB STOP_FILE MAX_SECONDS
 */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long errors, mismatches;

static void fail(const char *what, MYSQL_STMT *stmt, MYSQL *db)
{
    errors++;
    if (stmt)
        fprintf(stderr, "%s: error %u (%s)\n", what, mysql_stmt_errno(stmt),
                mysql_stmt_error(stmt));
    else
        fprintf(stderr, "%s: error %u (%s)\n", what, mysql_errno(db), mysql_error(db));
}

/* One bound column or parameter. */
static void bind(MYSQL_BIND *b, enum enum_field_types type, void *buffer, unsigned long size,
                 unsigned long *length, my_bool *is_null)
{
    memset(b, 0, sizeof *b);
    b->buffer_type = type;
    b->buffer = buffer;
    b->buffer_length = size;
    b->length = length;
    b->is_null = is_null;
}

static MYSQL_STMT *prepare(MYSQL *db, const char *sql)
{
    MYSQL_STMT *stmt = mysql_stmt_init(db);
    if (!stmt || mysql_stmt_prepare(stmt, sql, strlen(sql))) {
        fprintf(stderr, "prepare %s: %s\n", sql, stmt ? mysql_stmt_error(stmt) : "no memory");
        exit(2);
    }
    return stmt;
}

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: %s HOST PORT USER PASSWORD DB STOP_FILE MAX_SECONDS\n", argv[0]);
        return 2;
    }
    const char *stop_file = argv[6];
    time_t deadline = time(NULL) + atoi(argv[7]);
    MYSQL *db = mysql_init(NULL);
    my_bool no_ssl = 0;
    mysql_optionsv(db, MYSQL_OPT_SSL_ENFORCE, &no_ssl);
    if (!mysql_real_connect(db, argv[1], argv[3], argv[4], argv[5], atoi(argv[2]), NULL, 0)) {
        fprintf(stderr, "connect: %s\n", mysql_error(db));
        return 2;
    }
    if (mysql_query(db, "CREATE TABLE ps_c (id INT PRIMARY KEY, name VARCHAR(64), "
                        "score DOUBLE, note VARCHAR(16), data BLOB)") ||
        mysql_query(db, "CREATE TABLE ps_bulk (id INT PRIMARY KEY, v VARCHAR(16))")) {
        fprintf(stderr, "create tables: %s\n", mysql_error(db));
        return 2;
    }

    /* The insert: bound once; the BLOB (parameter 4) always comes as long data. */
    MYSQL_STMT *ins = prepare(db, "INSERT INTO ps_c VALUES (?, ?, ?, ?, ?)");
    int id = 0;
    char name[64];
    unsigned long name_len = 0;
    double score = 0;
    my_bool is_null = 1;
    MYSQL_BIND in[5];
    bind(&in[0], MYSQL_TYPE_LONG, &id, 0, NULL, NULL);
    bind(&in[1], MYSQL_TYPE_STRING, name, sizeof name, &name_len, NULL);
    bind(&in[2], MYSQL_TYPE_DOUBLE, &score, 0, NULL, NULL);
    bind(&in[3], MYSQL_TYPE_STRING, NULL, 0, NULL, &is_null);
    bind(&in[4], MYSQL_TYPE_BLOB, NULL, 0, NULL, NULL);
    if (mysql_stmt_bind_param(ins, in)) {
        fprintf(stderr, "bind insert: %s\n", mysql_stmt_error(ins));
        return 2;
    }

    /* The read back: parameter and result bound once. */
    MYSQL_STMT *sel = prepare(db, "SELECT name, score, note, data FROM ps_c WHERE id = ?");
    int want_id = 0;
    MYSQL_BIND key;
    bind(&key, MYSQL_TYPE_LONG, &want_id, 0, NULL, NULL);
    if (mysql_stmt_bind_param(sel, &key)) {
        fprintf(stderr, "bind select: %s\n", mysql_stmt_error(sel));
        return 2;
    }
    char got_name[64], got_note[16], got_data[256];
    unsigned long got_name_len, got_note_len, got_data_len;
    double got_score;
    my_bool note_null, data_null;
    MYSQL_BIND out[4];
    bind(&out[0], MYSQL_TYPE_STRING, got_name, sizeof got_name, &got_name_len, NULL);
    bind(&out[1], MYSQL_TYPE_DOUBLE, &got_score, 0, NULL, NULL);
    bind(&out[2], MYSQL_TYPE_STRING, got_note, sizeof got_note, &got_note_len, &note_null);
    bind(&out[3], MYSQL_TYPE_BLOB, got_data, sizeof got_data, &got_data_len, &data_null);
    if (mysql_stmt_bind_result(sel, out)) {
        fprintf(stderr, "bind result: %s\n", mysql_stmt_error(sel));
        return 2;
    }

    /* The bulk insert: three rows per execution, column-wise arrays bound once. */
    MYSQL_STMT *bulk = prepare(db, "INSERT INTO ps_bulk VALUES (?, ?)");
    unsigned int rows = 3;
    int bulk_ids[3];
    char bulk_v[3][16];
    unsigned long bulk_len[3];
    char *bulk_ptr[3] = {bulk_v[0], bulk_v[1], bulk_v[2]};
    MYSQL_BIND b[2];
    bind(&b[0], MYSQL_TYPE_LONG, bulk_ids, 0, NULL, NULL);
    bind(&b[1], MYSQL_TYPE_STRING, bulk_ptr, 0, bulk_len, NULL);
    if (mysql_stmt_attr_set(bulk, STMT_ATTR_ARRAY_SIZE, &rows) || mysql_stmt_bind_param(bulk, b)) {
        fprintf(stderr, "bind bulk: %s\n", mysql_stmt_error(bulk));
        return 2;
    }

    long rounds = 0, executions = 0, inserted = 0, bulk_rows = 0;
    while (access(stop_file, F_OK) != 0 && time(NULL) < deadline) {
        rounds++;
        id = (int)rounds;
        name_len = (unsigned long)snprintf(name, sizeof name, "name-%d", id);
        score = id + 0.25;
        char blob[64];
        int blob_len = snprintf(blob, sizeof blob, "blob\x01\x02-%d", id);

        executions++;
        if (mysql_stmt_send_long_data(ins, 4, blob, (unsigned long)blob_len)) {
            fail("send_long_data", ins, db);
        } else if (mysql_stmt_execute(ins)) {
            fail("insert", ins, db);
        } else {
            inserted++;
            want_id = id;
            executions++;
            if (mysql_stmt_execute(sel) || mysql_stmt_store_result(sel)) {
                fail("select", sel, db);
            } else {
                int r = mysql_stmt_fetch(sel);
                if (r != 0 || got_name_len != name_len || memcmp(got_name, name, name_len) != 0 ||
                    got_score != score || !note_null || data_null ||
                    got_data_len != (unsigned long)blob_len ||
                    memcmp(got_data, blob, (size_t)blob_len) != 0) {
                    mismatches++;
                    fprintf(stderr, "row %d read back wrong (fetch %d)\n", id, r);
                }
                mysql_stmt_free_result(sel);
            }
        }

        for (int i = 0; i < 3; i++) {
            bulk_ids[i] = id * 3 + i;
            bulk_len[i] = (unsigned long)snprintf(bulk_v[i], sizeof bulk_v[i], "v%d", id * 3 + i);
        }
        executions++;
        if (mysql_stmt_execute(bulk))
            fail("bulk insert", bulk, db);
        else
            bulk_rows += (long)mysql_stmt_affected_rows(bulk);
    }
    printf("rounds=%ld executions=%ld errors=%ld mismatches=%ld inserted=%ld bulk_rows=%ld\n",
           rounds, executions, errors, mismatches, inserted, bulk_rows);
    mysql_stmt_close(ins);
    mysql_stmt_close(sel);
    mysql_stmt_close(bulk);
    mysql_close(db);
    return 0;
}
