-- For specs that stand in for the bridge with Lr.intercept: answer the identity challenge
-- (GET /v1/health?challenge=) as a bridge holding `token` on the URL's port does (docs/API.md), so the
-- client goes on to the request the spec is about.
local Identity = require 'Identity'
local JSON = require 'JSON'
local Lr = require 'lightroom_standin'

local FakeIdentity = {}

local function challengeOf(req)
	return req.method == 'GET' and req.url:match('/v1/health%?challenge=([%w_-]+)$')
end

-- The port a bridge answering this URL listens on: the URL's, else the scheme's default.
local function portOf(url)
	local scheme, authority = url:match('^(%a[%w+.-]*)://([^/?#]*)')
	return authority:match(':(%d+)$') or (scheme:lower() == 'https' and '443' or '80')
end

function FakeIdentity.isChallenge(req)
	return challengeOf(req) ~= nil
end

-- Lr.intercept that proves `token` to challenges and hands every other request to answer(req).
-- The challenge's answer is `health` (default: protocol 1, version 0.1.0) plus the proof.
function FakeIdentity.intercept(token, answer, health)
	Lr.intercept = function(req)
		local nonce = challengeOf(req)
		if not nonce then return answer(req) end
		local body = { status = 'ok', version = '0.1.0', protocol = 1 }
		for k, v in pairs(health or {}) do body[k] = v end
		body.proof = Identity.proof(token, portOf(req.url), nonce)
		return JSON.encode(body), { status = 200 }
	end
end

-- The requests the spec is about: Lr.requests without the identity challenges.
function FakeIdentity.calls()
	local out = {}
	for _, req in ipairs(Lr.requests) do
		if not challengeOf(req) then out[#out + 1] = req end
	end
	return out
end

return FakeIdentity
