<?php
// The PHP-FPM peer for scripts/bench: the probe's benchmark endpoints, routed on the end
// of SCRIPT_NAME + PATH_INFO (nginx sends the location path in SCRIPT_NAME).
$name = basename(($_SERVER['SCRIPT_NAME'] ?? '') . ($_SERVER['PATH_INFO'] ?? ''));
switch ($name) {
case 'hello':
    header('Content-Type: text/plain');
    echo 'Hello, world!';
    break;
case 'count':
    $in = fopen('php://input', 'rb');
    $total = 0;
    while (!feof($in)) {
        $total += strlen(fread($in, 65536));
    }
    header('Content-Type: text/plain');
    echo $total;
    break;
case 'big':
    $left = isset($_GET['bytes']) ? (int)$_GET['bytes'] : 64 << 20;
    header('Content-Type: application/octet-stream');
    header('Content-Length: ' . $left);
    $chunk = str_repeat('x', 65536);
    while ($left > 0) {
        $n = min($left, 65536);
        echo $n === 65536 ? $chunk : substr($chunk, 0, $n);
        $left -= $n;
    }
    break;
default:
    http_response_code(404);
    header('Content-Type: text/plain');
    echo "not found\n";
}
