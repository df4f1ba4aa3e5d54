<?php
// A port of Drupal 7's includes/password.inc (user_hash_password and
// _password_crypt with sha512), to make $S$ fixtures. Drupal's own code is
// GPL and needs a bootstrapped site; this is the same algorithm, line for
// line, with its constants: DRUPAL_HASH_LENGTH 55, count_log2 7..30.
//
//   php drupal7.php PASSWORD [LOG2]      prints a $S$ hash (LOG2 default 15, Drupal 7's DRUPAL_HASH_COUNT)
//   php drupal7.php --upgraded PASSWORD  prints U$S$…: a Drupal 6 md5 re-hashed as user_update_7000 does
//   php drupal7.php --check PASSWORD HASH  prints "ok" or "wrong" (user_check_password)

const DRUPAL_HASH_LENGTH = 55;
const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function _password_base64_encode($input, $count) {
  $output = '';
  $i = 0;
  do {
    $value = ord($input[$i++]);
    $output .= ITOA64[$value & 0x3f];
    if ($i < $count) {
      $value |= ord($input[$i]) << 8;
    }
    $output .= ITOA64[($value >> 6) & 0x3f];
    if ($i++ >= $count) {
      break;
    }
    if ($i < $count) {
      $value |= ord($input[$i]) << 16;
    }
    $output .= ITOA64[($value >> 12) & 0x3f];
    if ($i++ >= $count) {
      break;
    }
    $output .= ITOA64[($value >> 18) & 0x3f];
  } while ($i < $count);
  return $output;
}

function _password_generate_salt($count_log2) {
  $output = '$S$';
  $output .= ITOA64[$count_log2];
  $output .= _password_base64_encode(random_bytes(6), 6);
  return $output;
}

function _password_crypt($algo, $password, $setting) {
  if (strlen($password) > 512) {
    return FALSE;
  }
  $setting = substr($setting, 0, 12);
  if ($setting[0] != '$' || $setting[2] != '$') {
    return FALSE;
  }
  $count_log2 = strpos(ITOA64, $setting[3]);
  if ($count_log2 < 7 || $count_log2 > 30) {
    return FALSE;
  }
  $salt = substr($setting, 4, 8);
  if (strlen($salt) != 8) {
    return FALSE;
  }
  $count = 1 << $count_log2;
  $hash = hash($algo, $salt . $password, TRUE);
  do {
    $hash = hash($algo, $hash . $password, TRUE);
  } while (--$count);
  $len = strlen($hash);
  $output = $setting . _password_base64_encode($hash, $len);
  $expected = 12 + ceil((8 * $len) / 6);
  return (strlen($output) == $expected) ? substr($output, 0, DRUPAL_HASH_LENGTH) : FALSE;
}

function user_hash_password($password, $count_log2 = 15) {
  return _password_crypt('sha512', $password, _password_generate_salt($count_log2));
}

function user_check_password($password, $stored_hash) {
  if (substr($stored_hash, 0, 2) == 'U$') {
    $stored_hash = substr($stored_hash, 1);
    $password = md5($password);
  }
  $type = substr($stored_hash, 0, 3);
  switch ($type) {
    case '$S$':
      $hash = _password_crypt('sha512', $password, $stored_hash);
      break;
    case '$H$':
    case '$P$':
      $hash = _password_crypt('md5', $password, $stored_hash);
      break;
    default:
      return FALSE;
  }
  return ($hash && $stored_hash == $hash);
}

if ($argv[1] === '--check') {
  echo user_check_password($argv[2], $argv[3]) ? "ok\n" : "wrong\n";
} elseif ($argv[1] === '--upgraded') {
  echo 'U' . user_hash_password(md5($argv[2]), 15), "\n";
} else {
  echo user_hash_password($argv[1], isset($argv[2]) ? (int) $argv[2] : 15), "\n";
}
