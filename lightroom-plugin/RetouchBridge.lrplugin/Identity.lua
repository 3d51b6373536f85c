--[[ Is the server on the port the bridge we paired with, or something that took the
port first (docs/API.md, "Server identity")?

The client sends a fresh nonce to GET /v1/health?challenge=<nonce> (no token); the
bridge answers proof = hex HMAC-SHA256(key = token, msg = CONTEXT .. port .. ':' .. nonce),
port being the one its own socket listens on. Only a server that holds our token can
answer, and only for the port we connected to: a program on our port that relays the
challenge to a bridge on another port passes on a proof for that port, which we refuse.
BridgeClient does the asking; this file is pure.
]]

local Sha256 = require 'Sha256'

local Identity = {}

Identity.CONTEXT = 'retouch-bridge-identity-v2:'

-- The port as the bridge signs it: plain decimal, no leading zeros; nil for a non-port.
function Identity.portText(port)
	local n
	if type(port) == 'number' then
		n = port
	elseif type(port) == 'string' and port:match('^%d+$') then
		n = tonumber(port)
	end
	if not n or n ~= math.floor(n) or n < 1 or n > 65535 then return nil end
	return string.format('%d', n)
end

function Identity.proof(token, port, nonce)
	local text = Identity.portText(port)
	assert(text, 'not a TCP port: ' .. tostring(port))
	return Sha256.toHex(Sha256.hmac(token, Identity.CONTEXT .. text .. ':' .. nonce))
end

-- Every byte is compared whatever the first difference, so the time taken says nothing.
function Identity.matches(token, port, nonce, offered)
	if type(offered) ~= 'string' then return false end
	if not Identity.portText(port) then return false end -- no port to check against: no match
	local expected = Identity.proof(token, port, nonce)
	local diff = math.abs(#expected - #offered)
	for i = 1, #expected do
		diff = diff + math.abs(expected:byte(i) - (offered:byte(i) or 0))
	end
	return diff == 0
end

local counter = 0

-- What randomness there is. The OS's random device where the plug-in can read it (macOS;
-- Linux for the specs); Lightroom's LrUUID where present (undocumented, so only if it
-- loads). FALLBACK on Windows without LrUUID, weaker: math.random, the clocks and a table
-- address. An impostor that could predict the nonce could have asked a real bridge with
-- the same token for the answer in advance; that needs more than a port.
function Identity.entropy()
	counter = counter + 1
	local parts = { tostring(os.time()), tostring(os.clock()), tostring({}), tostring(counter) }
	for _ = 1, 8 do parts[#parts + 1] = tostring(math.random()) end
	local device = io.open('/dev/urandom', 'rb')
	if device then
		parts[#parts + 1] = device:read(32) or ''
		device:close()
	end
	local ok, uuid = pcall(function() return import('LrUUID').generateUUID() end)
	if ok and type(uuid) == 'string' then parts[#parts + 1] = uuid end
	return table.concat(parts, '|')
end

-- 64 hex digits, fresh for every check (the bridge accepts 16 to 128 of [A-Za-z0-9_-]).
function Identity.newNonce(entropy)
	return Sha256.toHex(Sha256.digest(entropy or Identity.entropy()))
end

return Identity
