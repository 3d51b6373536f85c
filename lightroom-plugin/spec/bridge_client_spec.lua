-- BridgeClient against the real bridge: health, pairing, operations list, timeout.
local Lr = require 'lightroom_standin'
local Env = require 'bridge_env'
local BridgeClient = require 'BridgeClient'
local ImageInfo = require 'image_info'
-- Every spec body runs as a Lightroom async task: LrHttp yields.
local it = Lr.inTasks(it)

describe('BridgeClient against the real bridge #bridge', function()
	before_each(function() Lr.reset() end)

	it('Test connection reports version, protocol and the operations this bridge has', function()
		local client = BridgeClient.new { url = Env.url(), token = Env.token() }
		local summary = assert(client:testConnection())
		assert.are.equal(1, summary.protocol)
		assert.is_string(summary.version)
		assert.is_table(summary.operations, 'GET /v1/capabilities failed: ' .. tostring(summary.capabilitiesProblem))
		local have = {}
		for _, name in ipairs(summary.operations) do have[name] = true end
		assert.is_true(have.upscale and have.passthrough)
	end)

	it('checkAccess: identity proof, then the token, in two cheap calls; a wrong token never leaves', function()
		assert(BridgeClient.new({ url = Env.url(), token = Env.token() }):checkAccess())
		assert.matches('/v1/health%?challenge=%x+$', Lr.requests[1].url)
		assert.is_nil(Lr.requests[1].headers.authorization)
		assert.matches('/v1/jobs$', Lr.requests[2].url)
		assert.are.equal('Bearer ' .. Env.token(), Lr.requests[2].headers.authorization)
		local client = BridgeClient.new { url = Env.url(), token = 'wrong' }
		local ok, problem = client:checkAccess()
		assert.is_nil(ok)
		-- A bridge holding another token and an impostor look alike: one message names both.
		assert.are.equal('impostor', problem.kind)
		assert.matches('another token%. Check the token', client:describe(problem))
		assert.are.equal(3, #Lr.requests, 'only the identity challenge went to the bridge')
		assert.is_nil(Lr.requests[3].headers.authorization)
	end)

	it('health needs no token; with a wrong one, capabilities are not even asked', function()
		local client = BridgeClient.new { url = Env.url(), token = 'wrong' }
		assert.are.equal('ok', assert(client:health()).status)
		local caps, problem = client:capabilities()
		assert.is_nil(caps)
		assert.are.equal('impostor', problem.kind)
		for _, req in ipairs(Lr.requests) do
			assert.is_nil(req.headers.authorization)
			assert.is_nil(req.url:find('capabilities', 1, true))
		end
	end)

	it('runs an operation and gets the encoded result back', function()
		local client = BridgeClient.new { url = Env.url(), token = Env.token() }
		local bytes, info = client:runOperation('upscale', { scale = 2, model = 'lanczos' },
			ImageInfo.readAll(Env.fixture('photo8.png')), 'photo8.png', { format = 'png' })
		assert.is_string(bytes)
		assert.are.equal('128', info.headers['x-width'])
		local out = ImageInfo.fromBytes(bytes)
		assert.are.same({ 'png', 128, 96 }, { out.format, out.width, out.height })
	end)

	it('a bridge slower than the timeout gives the timeout advice', function()
		local client = BridgeClient.new { url = Env.url(), token = Env.token(), timeout = 0.5 }
		local bytes, problem = client:runOperation('passthrough', { delay_s = 2 },
			ImageInfo.readAll(Env.fixture('photo8.png')), 'photo8.png', { format = 'png' })
		assert.is_nil(bytes)
		assert.are.equal('timeout', problem.kind)
		assert.matches('did not answer within 0%.5 seconds', client:describe(problem))
	end)

	it('an unknown operation is reported with the bridge\'s own words', function()
		local client = BridgeClient.new { url = Env.url(), token = Env.token() }
		local bytes, problem = client:runOperation('no-such-op', {}, ImageInfo.readAll(Env.fixture('photo8.png')),
			'photo8.png')
		assert.is_nil(bytes)
		assert.are.equal(404, problem.status)
		assert.are.equal('unknown_operation', problem.code)
		assert.matches('Update Retouch Bridge', client:describe(problem))
	end)
end)
