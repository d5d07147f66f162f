<?php
// A worker script: boot once, then serve requests from the handler.
// The same file also runs classically (no worker.script): it then answers
// the one request it was started for, so an app can move between modes.

// Boot: everything here runs once per worker (autoloading, container,
// routes, configuration...).
$booted = microtime(true);
$served = 0;
$routes = [
    '/' => fn() => "Hello from a warm worker\n",
    '/about' => fn() => "Booted once, serving many\n",
];

$handler = function () use (&$served, $routes, $booted): void {
    // Each request gets its own $_GET, $_POST, $_COOKIE, $_FILES, $_SERVER,
    // headers, session and output.
    $served++;
    $path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH);
    $route = $routes[$path] ?? null;
    header('Content-Type: text/plain; charset=utf-8');
    if ($route === null) {
        http_response_code(404);
        echo "Not found\n";
        return;
    }
    echo $route();
    printf("worker %d, request %d of this worker, booted %.3f s ago\n",
        getmypid(), $served, microtime(true) - $booted);
};

if (function_exists('lowphp_handle_request')) {
    // false: the worker must stop (reload, worker.max_requests, memory).
    while (lowphp_handle_request($handler)) {
        gc_collect_cycles();
    }
} else {
    $handler();
}
