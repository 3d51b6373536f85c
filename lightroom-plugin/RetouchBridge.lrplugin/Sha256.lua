--[[ SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104) in plain Lua 5.1.

Sha256.digest(s)        -> the 32-byte hash of string s
Sha256.hmac(key, s)     -> the 32-byte HMAC-SHA256 of s under key
Sha256.toHex(bytes)     -> lower-case hex

Lightroom's Lua has no bit library, so the bitwise operations are arithmetic on
32-bit unsigned integers held in Lua numbers (doubles hold them exactly): AND and XOR
go through 16x16 tables, four bits at a time. Slow, and fine: the plug-in only hashes
a few short strings to check the bridge's identity proof (Identity.lua).
]]

local Sha256 = {}

local floor = math.floor
local byte, char = string.byte, string.char
local TWO32 = 4294967296

-- AND4[a][b], XOR4[a][b] for every pair of 4-bit values.
local AND4, XOR4 = {}, {}
for a = 0, 15 do
	AND4[a], XOR4[a] = {}, {}
	for b = 0, 15 do
		local andv, xorv, weight, x, y = 0, 0, 1, a, b
		for _ = 1, 4 do
			local xb, yb = x % 2, y % 2
			if xb == 1 and yb == 1 then andv = andv + weight end
			if xb ~= yb then xorv = xorv + weight end
			x, y, weight = (x - xb) / 2, (y - yb) / 2, weight * 2
		end
		AND4[a][b], XOR4[a][b] = andv, xorv
	end
end

local function bitwise(table4, a, b)
	local result, weight = 0, 1
	for _ = 1, 8 do
		local x, y = a % 16, b % 16
		result = result + table4[x][y] * weight
		a, b, weight = (a - x) / 16, (b - y) / 16, weight * 16
	end
	return result
end

local function band(a, b) return bitwise(AND4, a, b) end
local function bxor(a, b) return bitwise(XOR4, a, b) end
local function bnot(a) return TWO32 - 1 - a end
local function shr(a, n) return floor(a / 2 ^ n) end

local function rotr(a, n)
	local low = a % 2 ^ n
	return (a - low) / 2 ^ n + low * 2 ^ (32 - n)
end

-- First 32 bits of the fractional parts of the cube roots of the first 64 primes.
local K = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}
-- First 32 bits of the fractional parts of the square roots of the first 8 primes.
local H0 = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 }

-- A 32-bit integer as 4 big-endian bytes (string.format's %x truncates to a C long,
-- 32 bits on Windows, so it is never used on these values).
local function bytes32(n)
	local b1 = floor(n / 16777216)
	local b2 = floor(n / 65536) % 256
	local b3 = floor(n / 256) % 256
	return char(b1, b2, b3, n % 256)
end

-- The message padded to whole 64-byte blocks: 0x80, zeros, its length in bits (64-bit big-endian).
local function pad(s)
	local zeros = (55 - #s) % 64
	local bits = #s * 8
	return s .. '\128' .. string.rep('\0', zeros) .. bytes32(floor(bits / TWO32)) .. bytes32(bits % TWO32)
end

local function compress(h, block, at)
	local w = {}
	for t = 0, 15 do
		local b1, b2, b3, b4 = byte(block, at + 4 * t, at + 4 * t + 3)
		w[t] = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
	end
	for t = 16, 63 do
		local x, y = w[t - 15], w[t - 2]
		local s0 = bxor(bxor(rotr(x, 7), rotr(x, 18)), shr(x, 3))
		local s1 = bxor(bxor(rotr(y, 17), rotr(y, 19)), shr(y, 10))
		w[t] = (w[t - 16] + s0 + w[t - 7] + s1) % TWO32
	end
	local a, b, c, d, e, f, g, hh = h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8]
	for t = 0, 63 do
		local S1 = bxor(bxor(rotr(e, 6), rotr(e, 11)), rotr(e, 25))
		local ch = bxor(band(e, f), band(bnot(e), g))
		local t1 = (hh + S1 + ch + K[t + 1] + w[t]) % TWO32
		local S0 = bxor(bxor(rotr(a, 2), rotr(a, 13)), rotr(a, 22))
		local maj = bxor(bxor(band(a, b), band(a, c)), band(b, c))
		local t2 = (S0 + maj) % TWO32
		hh, g, f, e, d, c, b, a = g, f, e, (d + t1) % TWO32, c, b, a, (t1 + t2) % TWO32
	end
	h[1], h[2], h[3], h[4] = (h[1] + a) % TWO32, (h[2] + b) % TWO32, (h[3] + c) % TWO32, (h[4] + d) % TWO32
	h[5], h[6], h[7], h[8] = (h[5] + e) % TWO32, (h[6] + f) % TWO32, (h[7] + g) % TWO32, (h[8] + hh) % TWO32
end

function Sha256.digest(s)
	local data = pad(s)
	local h = { H0[1], H0[2], H0[3], H0[4], H0[5], H0[6], H0[7], H0[8] }
	for at = 1, #data, 64 do compress(h, data, at) end
	local out = {}
	for i = 1, 8 do out[i] = bytes32(h[i]) end
	return table.concat(out)
end

local BLOCK = 64

local function xorEach(s, value)
	return (s:gsub('.', function(c) return char(bxor(byte(c), value)) end))
end

function Sha256.hmac(key, message)
	if #key > BLOCK then key = Sha256.digest(key) end
	key = key .. string.rep('\0', BLOCK - #key)
	local inner = Sha256.digest(xorEach(key, 0x36) .. message)
	return Sha256.digest(xorEach(key, 0x5c) .. inner)
end

function Sha256.toHex(bytes)
	return (bytes:gsub('.', function(c) return string.format('%02x', byte(c)) end))
end

return Sha256
