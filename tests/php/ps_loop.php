<?php
// PHP mysqli (mysqlnd) prepared statements the way applications use them: prepared
// once, parameters bound once, executed in a loop. Each round sends a BLOB as long
// data and inserts (INT, VARCHAR, DOUBLE, NULL, BLOB), then reads the row back with a
// second statement and compares every value. Runs until STOP_FILE exists (or
// MAX_SECONDS pass), printing every error to stderr as it happens, then one line:
//   rounds=R executions=E errors=N mismatches=M inserted=I
//
// usage: php ps_loop.php HOST PORT USER PASSWORD DB STOP_FILE MAX_SECONDS

mysqli_report(MYSQLI_REPORT_OFF);
if ($argc != 8) {
    fwrite(STDERR, "usage: php ps_loop.php HOST PORT USER PASSWORD DB STOP_FILE MAX_SECONDS\n");
    exit(2);
}
[, $host, $port, $user, $password, $schema, $stop_file, $max_seconds] = $argv;
$deadline = time() + (int)$max_seconds;

$db = new mysqli($host, $user, $password, $schema, (int)$port);
if ($db->connect_errno) {
    fwrite(STDERR, "connect: {$db->connect_error}\n");
    exit(2);
}
if (!$db->query("CREATE TABLE ps_php (id INT PRIMARY KEY, name VARCHAR(64), " .
                "score DOUBLE, note VARCHAR(16), data BLOB)")) {
    fwrite(STDERR, "create table: {$db->error}\n");
    exit(2);
}

function prepared(mysqli $db, string $sql): mysqli_stmt {
    $stmt = $db->prepare($sql);
    if ($stmt === false) {
        fwrite(STDERR, "prepare $sql: {$db->error}\n");
        exit(2);
    }
    return $stmt;
}

$id = 0; $name = ''; $score = 0.0; $note = null; $data = null;
$ins = prepared($db, "INSERT INTO ps_php VALUES (?, ?, ?, ?, ?)");
$ins->bind_param("isdsb", $id, $name, $score, $note, $data);

$want = 0;
$sel = prepared($db, "SELECT name, score, note, data FROM ps_php WHERE id = ?");
$sel->bind_param("i", $want);

$rounds = 0; $executions = 0; $errors = 0; $mismatches = 0; $inserted = 0;
while (!file_exists($stop_file) && time() < $deadline) {
    $rounds++;
    $id = $rounds;
    $name = "name-$id";
    $score = $id + 0.25;
    $blob = "blob\x01\x02\x00-$id";

    $executions++;
    if (!$ins->send_long_data(4, $blob) || !$ins->execute()) {
        $errors++;
        fwrite(STDERR, "insert $id: error {$ins->errno} ({$ins->error})\n");
        continue;
    }
    $inserted++;
    $want = $id;
    $executions++;
    if (!$sel->execute() || !$sel->store_result()) {
        $errors++;
        fwrite(STDERR, "select $id: error {$sel->errno} ({$sel->error})\n");
        continue;
    }
    // Bound after each execution: mysqlnd keeps reading the first row's values into
    // variables bound before the first one.
    $sel->bind_result($got_name, $got_score, $got_note, $got_data);
    $fetched = $sel->fetch();
    if ($fetched !== true || $got_name !== $name || $got_score !== $score ||
        $got_note !== null || $got_data !== $blob) {
        $mismatches++;
        fwrite(STDERR, "row $id read back wrong: " .
               var_export([$fetched, $got_name, $got_score, $got_note, $got_data], true) . "\n");
    }
    $sel->free_result();
}
echo "rounds=$rounds executions=$executions errors=$errors mismatches=$mismatches inserted=$inserted\n";
