local Lr = require 'lightroom_standin'
local Scratch = require 'scratch'
local BridgeClient = require 'BridgeClient'
local Enhancer = require 'Enhancer'
local Multipart = require 'Multipart'
local JSON = require 'JSON'
local FakeIdentity = require 'fake_identity'
-- Every spec body runs as a Lightroom async task: LrHttp yields.
local it = Lr.inTasks(it)

local TIFF_MAGIC, JPEG_MAGIC = 'II*\0', '\255\216\255\224'

-- A capture of what a bridge would do: answer with a file of the requested format whose
-- body records which steps it went through.
local function fakeBridgeAnswers(failAt)
	local count = 0
	FakeIdentity.intercept('t', function(req)
		count = count + 1
		if count == failAt then
			return JSON.encode({ error = { code = 'internal_error', message = 'RuntimeError: CUDA went away' } }),
				{ status = 500 }
		end
		local parts = Multipart.parse(req.body, req.headers['content-type'])
		local input = parts[2].value
		local format = req.url:match('format=(%a+)')
		local magic = format == 'jpeg' and JPEG_MAGIC or TIFF_MAGIC
		return magic .. input:sub(5) .. '|' .. req.url:match('/v1/ops/([%w-]+)'), { status = 200 }
	end)
end

local PLAN = {
	{ op = 'denoise', label = 'Denoise', params = { model = 'SCUNet', strength = 0.5 } },
	{ op = 'upscale', label = 'Upscale x2', params = { scale = 2, model = 'lanczos' } },
}

describe('Enhancer', function()
	local dir, client
	before_each(function()
		Lr.reset()
		dir = Scratch.dir('enhancer')
		client = BridgeClient.new { token = 't' }
	end)
	after_each(Scratch.cleanAll)

	it('chains the steps through TIFF and asks only the last one for the final format', function()
		fakeBridgeAnswers()
		local input = Scratch.write(dir .. '/render.tif', TIFF_MAGIC .. 'pixels')
		local output = dir .. '/photo.jpg'
		local steps = {}
		assert(Enhancer.enhanceFile {
			client = client, plan = PLAN, input = input, output = output,
			output_format = { format = 'jpeg', quality = 90 },
			onStep = function(i, n, step) steps[#steps + 1] = string.format('%d/%d %s', i, n, step.op) end,
		})
		assert.are.same({ '1/2 denoise', '2/2 upscale' }, steps)
		local calls = FakeIdentity.calls()
		assert.matches('/v1/ops/denoise%?format=tiff$', calls[1].url)
		assert.matches('/v1/ops/upscale%?format=jpeg&quality=90$', calls[2].url)
		-- The second step received the first step's answer.
		local second = Multipart.parse(calls[2].body, calls[2].headers['content-type'])[2]
		assert.are.equal(TIFF_MAGIC .. 'pixels|denoise', second.value)
		assert.are.equal('step1.tif', second.fileName)
		assert.are.equal(JPEG_MAGIC .. 'pixels|denoise|upscale', Scratch.read(output))
		assert.are.same({ 'photo.jpg', 'render.tif' }, Scratch.list(dir))
	end)

	it('replaces an existing file only when the result is complete', function()
		fakeBridgeAnswers()
		local path = Scratch.write(dir .. '/photo.tif', TIFF_MAGIC .. 'original')
		assert(Enhancer.enhanceFile { client = client, plan = PLAN, input = path, output = path,
			output_format = { format = 'tiff' } })
		assert.are.equal(TIFF_MAGIC .. 'original|denoise|upscale', Scratch.read(path))
		assert.are.same({ 'photo.tif' }, Scratch.list(dir))
	end)

	it('a failing step leaves the file as it was, no temp files, and says which step', function()
		fakeBridgeAnswers(2)
		local path = Scratch.write(dir .. '/photo.tif', TIFF_MAGIC .. 'original')
		local ok, message = Enhancer.enhanceFile { client = client, plan = PLAN, input = path, output = path,
			output_format = { format = 'tiff' } }
		assert.is_nil(ok)
		assert.matches('^Upscale x2 failed: ', message)
		assert.matches('CUDA went away', message)
		assert.matches('bridge log', message)
		assert.are.equal(TIFF_MAGIC .. 'original', Scratch.read(path))
		assert.are.same({ 'photo.tif' }, Scratch.list(dir))
	end)

	it('cancel between steps: the next step is not sent and the file is left as it was', function()
		fakeBridgeAnswers()
		local path = Scratch.write(dir .. '/photo.tif', TIFF_MAGIC .. 'original')
		local ok, message, problem = Enhancer.enhanceFile { client = client, plan = PLAN, input = path, output = path,
			output_format = { format = 'tiff' },
			isCanceled = function() return #FakeIdentity.calls() >= 1 end,   -- clicked during step 1
		}
		assert.is_nil(ok)
		assert.are.equal('Cancelled.', message)
		assert.are.equal('cancelled', problem.kind)
		assert.are.equal(1, #FakeIdentity.calls(), 'only the first step went out')
		assert.are.equal(TIFF_MAGIC .. 'original', Scratch.read(path))
		assert.are.same({ 'photo.tif' }, Scratch.list(dir))
	end)

	it('refuses an answer in the wrong format instead of saving it', function()
		FakeIdentity.intercept('t', function() return '<html>hello</html>', { status = 200 } end)
		local path = Scratch.write(dir .. '/photo.tif', TIFF_MAGIC .. 'original')
		local ok, message = Enhancer.enhanceFile { client = client, plan = { PLAN[2] }, input = path, output = path,
			output_format = { format = 'tiff' } }
		assert.is_nil(ok)
		assert.matches('not a TIFF file', message)
		assert.are.equal(TIFF_MAGIC .. 'original', Scratch.read(path))
	end)

	it('reports a missing input and an unwritable destination without raising', function()
		fakeBridgeAnswers()
		local ok, message = Enhancer.enhanceFile { client = client, plan = PLAN, input = dir .. '/nope.tif',
			output = dir .. '/out.tif', output_format = { format = 'tiff' } }
		assert.is_nil(ok)
		assert.matches('Could not read the rendered photo', message)
		local input = Scratch.write(dir .. '/in.tif', TIFF_MAGIC)
		ok, message = Enhancer.enhanceFile { client = client, plan = PLAN, input = input,
			output = dir .. '/missing-folder/out.tif', output_format = { format = 'tiff' } }
		assert.is_nil(ok)
		assert.matches('Could not save the enhanced photo', message)
		assert.are.same({ 'in.tif' }, Scratch.list(dir))
	end)

	it('writeAtomically never leaves a temp file and checks the size written', function()
		local path = dir .. '/a.bin'
		assert(Enhancer.writeAtomically(path, string.rep('x', 100000)))
		assert(Enhancer.writeAtomically(path, 'short'))
		assert.are.equal('short', Scratch.read(path))
		assert.are.same({ 'a.bin' }, Scratch.list(dir))
	end)

	it('writeAtomically without os.rename (as on Windows) still replaces the file whole', function()
		local path = Scratch.write(dir .. '/b.bin', 'old')
		local rename = os.rename
		os.rename = nil -- luacheck: ignore
		local ok, err = pcall(Enhancer.writeAtomically, path, 'new contents')
		os.rename = rename -- luacheck: ignore
		assert.is_true(ok, err)
		assert.are.equal('new contents', Scratch.read(path))
		assert(Enhancer.writeAtomically(dir .. '/c.bin', 'fresh'))
		assert.are.same({ 'b.bin', 'c.bin' }, Scratch.list(dir))
	end)

	it('recognises the formats the bridge writes', function()
		assert.is_true(Enhancer.looksLike('tiff', 'MM\0*rest'))
		assert.is_true(Enhancer.looksLike('png', '\137PNG\r\n\26\nrest'))
		assert.is_true(Enhancer.looksLike('jpeg', '\255\216\255\225'))
		assert.is_false(Enhancer.looksLike('jpeg', 'II*\0'))
		assert.is_false(Enhancer.looksLike('tiff', '{"error":1}'))
	end)
end)
