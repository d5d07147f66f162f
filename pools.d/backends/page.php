<?php
// A page of the [site] pool: one indexed read, a cached counter and the
// shop's open orders, the three fetched at once.
$id = (int)($_GET['id'] ?? 1);
$calls = LowPHP\await([
    'user'   => LowPHP\pgsql('main')->queryAsync('SELECT id, name, admin FROM users WHERE id = $1', [$id]),
    'orders' => LowPHP\mysql('shop')->queryAsync('SELECT id, total FROM orders WHERE user_id = ? AND open', [$id]),
    'hits'   => LowPHP\redis('cache')->callAsync('INCR', "hits:$id"),
]);
header('Content-Type: application/json');
echo json_encode(['user' => $calls['user'][0] ?? null, 'orders' => $calls['orders'], 'hits' => $calls['hits']]);
