-- Port squatting: the plug-in's own SHA-256/HMAC, and the identity check before the token
-- or any pixels leave, against the REAL bridge and against impostors that record what they get.
local Lr = require 'lightroom_standin'
local Env = require 'bridge_env'
local Sha256 = require 'Sha256'
local Identity = require 'Identity'
local BridgeClient = require 'BridgeClient'
local ImageInfo = require 'image_info'
local Views = require 'views'
local Scratch = require 'scratch'

local function hex(s) return Sha256.toHex(s) end

-- RFC 4231, section 4: HMAC-SHA-256 test cases 1 to 7.
local RFC4231 = {
	{ key = string.rep('\11', 20), data = 'Hi There',
		mac = 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7' },
	{ key = 'Jefe', data = 'what do ya want for nothing?',
		mac = '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843' },
	{ key = string.rep('\170', 20), data = string.rep('\221', 50),
		mac = '773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe' },
	{ key = string.char(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25),
		data = string.rep('\205', 50),
		mac = '82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b' },
	{ key = string.rep('\12', 20), data = 'Test With Truncation', mac = 'a3b6167473100ee06e0c796c2955552b' },
	{ key = string.rep('\170', 131), data = 'Test Using Larger Than Block-Size Key - Hash Key First',
		mac = '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54' },
	{ key = string.rep('\170', 131),
		data = 'This is a test using a larger than block-size key and a larger than block-size data. '
			.. 'The key needs to be hashed before being used by the HMAC algorithm.',
		mac = '9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2' },
}

describe('SHA-256 and HMAC-SHA256 in plain Lua', function()
	it('SHA-256: the FIPS 180 examples', function()
		assert.are.equal('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', hex(Sha256.digest('')))
		assert.are.equal('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', hex(Sha256.digest('abc')))
		assert.are.equal('248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
			hex(Sha256.digest('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')))
	end)

	it('HMAC-SHA256: RFC 4231 test cases 1-7', function()
		for i, case in ipairs(RFC4231) do
			local mac = hex(Sha256.hmac(case.key, case.data))
			assert.are.equal(case.mac, mac:sub(1, #case.mac), 'test case ' .. i)
		end
	end)

	it('the proof is HMAC(token, context .. port .. ":" .. nonce), the port in plain decimal', function()
		local nonce = Identity.newNonce()
		local want = hex(Sha256.hmac('tok', 'retouch-bridge-identity-v2:7847:' .. nonce))
		assert.are.equal(want, Identity.proof('tok', 7847, nonce))
		assert.are.equal(want, Identity.proof('tok', '7847', nonce))
		assert.are.equal(want, Identity.proof('tok', '07847', nonce))
		for _, port in ipairs({ 0, 65536, -1, 7847.5, '', '?', '7847x', ' 7847' }) do
			assert.is_nil(Identity.portText(port), tostring(port))
			assert.has_error(function() Identity.proof('tok', port, nonce) end)
		end
	end)

	it('a proof matches only exactly: no prefix, no case change, no other nonce, token or port', function()
		local nonce = Identity.newNonce()
		local good = Identity.proof('tok', 7847, nonce)
		assert.is_true(Identity.matches('tok', 7847, nonce, good))
		assert.is_true(Identity.matches('tok', '7847', nonce, good))
		local last = good:sub(-1) == '0' and '1' or '0'
		for _, bad in ipairs({ '', good:sub(1, -2), good .. '0', good:upper(), good:sub(1, -2) .. last,
			Identity.proof('tok2', 7847, nonce), Identity.proof('tok', 7847, nonce .. 'x'),
			Identity.proof('tok', 7848, nonce), Identity.proof('tok', 784, '7:' .. nonce) }) do
			assert.is_false(Identity.matches('tok', 7847, nonce, bad), bad)
		end
		assert.is_false(Identity.matches('tok', 7847, nonce, nil))
		assert.is_false(Identity.matches('tok', 7847, nonce, 42))
		-- No port to check against: nothing matches, nothing raises.
		assert.is_false(Identity.matches('tok', '?', nonce, good))
		assert.is_false(Identity.matches('tok', nil, nonce, good))
	end)

	it('nonces are 64 hex digits the bridge accepts, never repeated', function()
		local seen, count = {}, 0
		for _ = 1, 200 do
			local nonce = Identity.newNonce()
			assert.matches('^%x+$', nonce)
			assert.are.equal(64, #nonce)
			if not seen[nonce] then count = count + 1 end
			seen[nonce] = true
		end
		assert.are.equal(200, count)
		-- Without the OS's random device or LrUUID, the clocks, counter and math.random still differ.
		local a, b = Identity.newNonce(Identity.entropy()), Identity.newNonce(Identity.entropy())
		assert.are_not.equal(a, b)
	end)

	it('the port checked and named in messages is the one the bridge URL connects to', function()
		assert.are.equal('7847', BridgeClient.new({}):port())
		assert.are.equal('9000', BridgeClient.new({ url = 'http://[::1]:9000/x' }):port())
		assert.are.equal('80', BridgeClient.new({ url = 'http://[::1]' }):port())
		assert.are.equal('80', BridgeClient.new({ url = 'localhost' }):port())
		assert.are.equal('443', BridgeClient.new({ url = 'https://localhost/' }):port())
		assert.are.equal('7847', BridgeClient.new({ url = 'http://user:8000@localhost:7847' }):port())
		assert.are.equal('80', BridgeClient.new({ url = 'http://user:8000@localhost' }):port())
	end)
end)

describe('SHA-256 and HMAC-SHA256 against Python\'s hashlib #bridge', function()
	it('agree at every length around the block edges, keys longer than a block included', function()
		local script = os.tmpname()
		local f = assert(io.open(script, 'w'))
		f:write([[
import hashlib, hmac
for n in range(140):
    data = bytes((i * 7 + n) % 256 for i in range(n))
    key = bytes((i * 13 + 1) % 256 for i in range((n * 3) % 150))
    print(hashlib.sha256(data).hexdigest(), hmac.new(key, data, hashlib.sha256).hexdigest())
]])
		f:close()
		local pipe = assert(io.popen(string.format('"%s" %s', os.getenv('RB_SPEC_PYTHON') or 'python3', script)))
		local lines = {}
		for line in pipe:lines() do lines[#lines + 1] = line end
		pipe:close()
		os.remove(script)
		assert.are.equal(140, #lines)
		for n = 0, 139 do
			local data, key = {}, {}
			for i = 0, n - 1 do data[#data + 1] = string.char((i * 7 + n) % 256) end
			for i = 0, (n * 3) % 150 - 1 do key[#key + 1] = string.char((i * 13 + 1) % 256) end
			data, key = table.concat(data), table.concat(key)
			assert.are.equal(lines[n + 1], hex(Sha256.digest(data)) .. ' ' .. hex(Sha256.hmac(key, data)), 'length ' .. n)
		end
	end)
end)

describe('the identity check #bridge', function()
	local servers
	before_each(function()
		Lr.reset()
		servers = {}
	end)
	after_each(function()
		for _, s in ipairs(servers) do s.stop() end
		Scratch.cleanAll()
	end)

	local function start(mode, port)
		local s = Env.startFakeServer(mode, port)
		servers[#servers + 1] = s
		return s
	end

	local function bridgePort() return tonumber(Env.url():match(':(%d+)$')) end

	-- The impostor was only challenged: never the token, never a body, never a POST.
	local function assertOnlyChallenged(server)
		local received, raw = server.received()
		assert.is_true(#received > 0, 'the impostor was challenged')
		for _, request in ipairs(received) do
			assert.matches('^GET /v1/health%?challenge=%x+ HTTP/1%.[01]\n', request)
			assert.is_nil(request:lower():find('authorization', 1, true), request)
		end
		assert.is_nil(raw:find(Env.token(), 1, true), 'the token never reached it')
	end

	it('the real bridge\'s proof is the one our own HMAC computes', Lr.task(function()
		local LrHttp = import 'LrHttp'
		for _, nonce in ipairs({ string.rep('a', 16), string.rep('Zz-_', 32), Identity.newNonce() }) do
			local body = assert(LrHttp.get(Env.url() .. '/v1/health?challenge=' .. nonce, {}, 10))
			local proof = body:match('"proof":%s*"(%x+)"')
			assert.are.equal(Identity.proof(Env.token(), bridgePort(), nonce), proof, nonce)
			assert.are_not.equal(Identity.proof(Env.token(), bridgePort() + 1, nonce), proof)
		end
		local client = BridgeClient.new { url = Env.url(), token = Env.token() }
		assert.are.equal('ok', assert(client:verifyIdentity()).status)
		assert.is_true(client.verified)
	end))

	for _, mode in ipairs({ 'no-proof', 'wrong-proof', 'other-token' }) do
		it('an impostor (' .. mode .. ') gets no token and no photo; the message says what to do', Lr.task(function()
			local impostor = start(mode)
			local client = BridgeClient.new { url = impostor.url, token = Env.token() }
			local ok, problem = client:testConnection()
			assert.is_nil(ok)
			assert.are.equal('impostor', problem.kind)
			assert.are.equal('Something else is answering on port ' .. impostor.port .. ' — not Retouch Bridge, '
				.. 'or a bridge with another token. Check the token in Plug-in Manager > Retouch Bridge, or quit '
				.. 'the other program. Nothing was sent to it.', client:describe(problem))
			local bytes, upload = client:runOperation('upscale', { scale = 2 },
				ImageInfo.readAll(Env.fixture('photo8.png')), 'photo8.png')
			assert.is_nil(bytes)
			assert.are.equal('impostor', upload.kind)
			assert.is_nil(client:capabilities())
			assertOnlyChallenged(impostor)
		end))
	end

	it('a relay to the REAL bridge on another port (same token) gets no token and no photo', Lr.task(function()
		local relay = start('relay')
		assert.are_not.equal(bridgePort(), relay.port)
		-- The relay really reaches the bridge: it passes on the bridge's proof, for the bridge's port.
		local nonce = Identity.newNonce()
		local body = assert((import 'LrHttp').get(relay.url .. '/v1/health?challenge=' .. nonce, {}, 10))
		assert.are.equal(Identity.proof(Env.token(), bridgePort(), nonce), body:match('"proof":%s*"(%x+)"'))

		local client = BridgeClient.new { url = relay.url, token = Env.token() }
		local ok, problem = client:testConnection()
		assert.is_nil(ok)
		assert.are.equal('impostor', problem.kind)
		assert.matches('^Something else is answering on port ' .. relay.port, client:describe(problem))
		local bytes, upload = client:runOperation('upscale', { scale = 2 },
			ImageInfo.readAll(Env.fixture('photo8.png')), 'photo8.png')
		assert.is_nil(bytes)
		assert.are.equal('impostor', upload.kind)
		assert.is_nil(client:capabilities())
		assertOnlyChallenged(relay)
		-- The same settings straight at the bridge's port pass: only the port gave the relay away.
		assert(BridgeClient.new({ url = Env.url(), token = Env.token() }):checkAccess())
	end))

	it('Test connection in Plug-in Manager reports an impostor', function()
		local impostor = start('no-proof')
		local provider = require 'PluginInfoProvider'
		local props = (import 'LrBinding').makePropertyTable()
		provider.startDialog(props)
		props.bridgeUrl, props.bridgeToken = impostor.url, Env.token()
		local sections = provider.sectionsForTopOfDialog((import 'LrView').osFactory(), props)
		Views.ofKind(sections[1], 'push_button')[1].action()
		assert.is_false(props.connectionOk)
		assert.matches('^Something else is answering on port ' .. impostor.port .. ' — not Retouch Bridge',
			props.connectionStatus)
		assertOnlyChallenged(impostor)
	end)

	it('an export to an impostor: every photo fails with that message, none is rendered or sent', function()
		local impostor = start('wrong-proof')
		Env.pair(Lr, { url = impostor.url })
		local dest = Scratch.dir('impostor-export')
		local function photo(name)
			return Lr.newPhoto { path = '/Volumes/Photos/' .. name, fileFormat = 'RAW',
				renders = { TIFF16 = Env.fixture('photo16.tif') } }
		end
		local context = Lr.filterContext {
			propertyTable = { LR_format = 'TIFF', LR_export_bitDepth = 16, rb_upscale = true, rb_upscaleScale = 2,
				rb_upscaleModel = 'lanczos', rb_force16 = true },
			destinationDir = dest,
			photos = { photo('A.cr2'), photo('B.cr2') },
		}
		package.loaded.AIEnhanceFilterProvider = nil
		local provider = require 'AIEnhanceFilterProvider'
		Lr.runTask(function()
			import('LrFunctionContext').callWithContext('export', function(fc)
				provider.postProcessRenderedPhotos(fc, context)
			end)
		end)
		for i = 1, 2 do
			local done = context.renditionsToSatisfy[i].done
			assert.is_false(done.success)
			assert.matches('^Something else is answering on port ' .. impostor.port, done.message)
			assert.are.equal('skipped', context.sources[i].renderResult)
		end
		assert.are.same({}, Scratch.list(dest))
		assertOnlyChallenged(impostor)
	end)

	it('a bridge that quits and an impostor that takes its port: the next photo is not sent', Lr.task(function()
		local bridge = start('crash') -- proves its identity with the spec token
		local client = BridgeClient.new { url = bridge.url, token = Env.token() }
		assert(client:checkAccess())
		bridge.stop()
		local impostor = start('no-proof', bridge.port)
		assert.are.equal(bridge.port, impostor.port)
		local bytes, problem = client:runOperation('upscale', { scale = 2 },
			ImageInfo.readAll(Env.fixture('photo8.png')), 'photo8.png')
		assert.is_nil(bytes)
		assert.are.equal('impostor', problem.kind)
		assertOnlyChallenged(impostor)
	end))
end)
