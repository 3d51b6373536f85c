-- "Run a recipe file" (docs/RECIPES.md) from the export filter and "Enhance selected photos…",
-- through POST /v1/recipes/run on the REAL bridge (spec/run.sh).
local Lr = require 'lightroom_standin'
local Env = require 'bridge_env'
local Scratch = require 'scratch'
local ImageInfo = require 'image_info'
local Views = require 'views'
local BridgeClient = require 'BridgeClient'
local Multipart = require 'Multipart'

local LrFunctionContext = import 'LrFunctionContext'

-- Grey-world white balance, then a x2 upscale: ops the bridge has without model files.
local TOML = [==[
name = "print"

[[steps]]
op = "color-match"
white_balance = "grey-world"

[[steps]]
op = "upscale"
scale = 2
model = "lanczos"
]==]
local JSON_RECIPE = '{"steps": [{"op": "upscale", "params": {"scale": 2, "model": "lanczos"}}]}'
local UNKNOWN_OP = '[[steps]]\nop = "upscale"\nscale = 2\nmodel = "lanczos"\n\n[[steps]]\nop = "no-such-op"\n'
local BAD_PARAM = '[[steps]]\nop = "color-match"\nwhite_balance = "grey-world"\nstrength = 5\n'
-- Valid for every photo, but x16 of large8.jpg is over the bridge's 200 MP limit: that photo
-- fails while the job runs (the bridge names the step in the error's details too).
local HUGE = '[[steps]]\nop = "upscale"\nscale = 16\nmodel = "lanczos"\n'
local SLOW = '[[steps]]\nop = "passthrough"\ndelay_s = 30\n'

local function photo(name)
	return Lr.newPhoto { path = '/Volumes/Photos/' .. name, fileFormat = 'RAW',
		renders = { TIFF16 = Env.fixture('photo16.tif'), JPEG = Env.fixture('photo8.jpg') } }
end

local function urls(method, pattern)
	local found = {}
	for _, req in ipairs(Lr.requests) do
		if req.method == method and req.url:find(pattern) then found[#found + 1] = req end
	end
	return found
end

local function runFilter(context)
	package.loaded.AIEnhanceFilterProvider = nil
	local provider = require 'AIEnhanceFilterProvider'
	Lr.runTask(function()
		LrFunctionContext.callWithContext('export', function(fc) provider.postProcessRenderedPhotos(fc, context) end)
	end)
	return context
end

describe('recipes from Lightroom, against the real bridge #bridge', function()
	local dir
	before_each(function()
		Lr.reset()
		Env.pair(Lr)
		dir = Scratch.dir('recipe')
	end)
	after_each(function()
		Scratch.cleanAll()
		assert.are.same({}, Env.leftoversInTemp(), 'temp files left behind')
	end)

	local function recipeFile(name, text) return Scratch.write(dir .. '/' .. name, text) end

	it('runRecipe sends the recipe text and the image, waits for the job, fetches the format asked', Lr.task(function()
		local input = ImageInfo.read(Env.fixture('photo16.tif'))
		local client = BridgeClient.new { url = Env.url(), token = Env.token() }
		local bytes, info = client:runRecipe(TOML, { path = Env.fixture('photo16.tif') }, 'photo16.tif',
			{ format = 'tiff' })
		assert.is_string(bytes, client:describe(info))
		local post = urls('POST', '/v1/recipes/run$')
		assert.are.equal(1, #post)
		local parts = Multipart.parse(post[1].body, post[1].headers['content-type'])
		assert.are.same({ 'recipe', 'image' }, { parts[1].name, parts[2].name })
		assert.are.equal(TOML, parts[1].value)
		assert.are.equal(ImageInfo.readAll(Env.fixture('photo16.tif')), parts[2].value)
		assert.matches('/v1/jobs/j%-[%w]+/result%?format=tiff$', Lr.requests[#Lr.requests].url)
		local path = Scratch.write(dir .. '/out.tif', bytes)
		local out = ImageInfo.read(path)
		assert.are.same({ 'tiff', input.width * 2, input.height * 2, 16 }, { out.format, out.width, out.height, out.bits })
	end))

	it('export filter: a JSON recipe file replaces the steps; the JPEG the user chose comes out x2', function()
		local path = recipeFile('web.json', JSON_RECIPE)
		local context = runFilter(Lr.filterContext {
			propertyTable = { LR_format = 'JPEG', LR_jpeg_quality = 0.8, rb_force16 = true,
				rb_upscale = true, rb_upscaleScale = 4, rb_useRecipe = true, rb_recipePath = path },
			destinationDir = dir, photos = { photo('R1.cr2'), photo('R2.cr2') },
		})
		for i, name in ipairs({ 'R1.jpg', 'R2.jpg' }) do
			assert.are.same({ success = true }, context.renditionsToSatisfy[i].done)
			local out = ImageInfo.read(dir .. '/' .. name)
			assert.are.same({ 'jpeg', 128, 96 }, { out.format, out.width, out.height }, 'the recipe\'s x2, not the x4 step')
		end
		assert.are.equal(0, #urls('POST', '/v1/ops/'))
		assert.are.equal(2, #urls('POST', '/v1/recipes/run$'))
		assert.matches('format=jpeg&quality=80$', Lr.requests[#Lr.requests].url)
	end)

	it('export filter: a refused step is named; the other photos are not rendered or sent', function()
		local path = recipeFile('bad.toml', UNKNOWN_OP)
		local context = runFilter(Lr.filterContext {
			propertyTable = { LR_format = 'TIFF', LR_export_bitDepth = 16, rb_useRecipe = true, rb_recipePath = path },
			destinationDir = dir, photos = { photo('B1.cr2'), photo('B2.cr2'), photo('B3.cr2') },
		})
		for i = 1, 3 do
			local done = context.renditionsToSatisfy[i].done
			assert.is_false(done.success)
			assert.matches('^Recipe bad%.toml failed: The recipe\'s step 2 %(no%-such%-op%) was refused: '
				.. 'unknown operation \'no%-such%-op\'', done.message)
		end
		assert.are.equal('skipped', context.sources[2].renderResult)
		assert.are.equal('skipped', context.sources[3].renderResult)
		assert.are.equal(1, #urls('POST', '/v1/recipes/run$'))
		-- Photo 1's render is left as Lightroom wrote it.
		assert.are.same({ 'B1.tif', 'bad.toml' }, Scratch.list(dir))
	end)

	it('export filter: a step that fails while running on one photo fails that photo only', function()
		local path = recipeFile('huge.toml', HUGE)
		local big = Lr.newPhoto { path = '/Volumes/Photos/L2.cr2', fileFormat = 'RAW',
			renders = { TIFF16 = Env.fixture('large8.jpg') } }
		local context = runFilter(Lr.filterContext {
			propertyTable = { LR_format = 'TIFF', LR_export_bitDepth = 16, rb_useRecipe = true, rb_recipePath = path },
			destinationDir = dir, photos = { photo('L1.cr2'), big, photo('L3.cr2') },
		})
		local failed = context.renditionsToSatisfy[2].done
		assert.is_false(failed.success)
		assert.matches('too large', failed.message)
		assert.not_matches('refused', failed.message)
		assert.not_matches('Fix that step', failed.message)
		for _, i in ipairs({ 1, 3 }) do
			assert.are.same({ success = true }, context.renditionsToSatisfy[i].done)
		end
		assert.are_not.equal('skipped', context.sources[3].renderResult)
		assert.are.equal(3, #urls('POST', '/v1/recipes/run$'))
		local out = ImageInfo.read(dir .. '/L3.tif')
		assert.are.same({ 'tiff', 1024, 768, 16 }, { out.format, out.width, out.height, out.bits })
	end)

	it('export filter: a recipe file that is not there fails every photo before any render or request', function()
		local context = runFilter(Lr.filterContext {
			propertyTable = { LR_format = 'TIFF', LR_export_bitDepth = 16, rb_useRecipe = true,
				rb_recipePath = dir .. '/gone.toml' },
			destinationDir = dir, photos = { photo('M1.cr2') },
		})
		assert.is_false(context.renditionsToSatisfy[1].done.success)
		assert.matches('gone%.toml does not exist%. Choose it again', context.renditionsToSatisfy[1].done.message)
		assert.are.equal('skipped', context.sources[1].renderResult)
		assert.are.equal(0, #Lr.requests)
	end)

	describe('Enhance selected photos…', function()
		local function runMenuItem(targets)
			Lr.catalog.targetPhotos = targets
			package.loaded.EnhanceSelected = nil
			Lr.runPluginFile('EnhanceSelectedMenuItem.lua')
			return Lr.messages[#Lr.messages]
		end
		local function original(name)
			local path = Scratch.write(dir .. '/' .. name, 'raw bytes')
			return Lr.newPhoto { path = path, fileFormat = 'RAW', renders = { TIFF16 = Env.fixture('photo16.tif') } }
		end

		it('stacks the recipe\'s result above each original', function()
			Lr.prefs.rb_useRecipe, Lr.prefs.rb_recipePath = true, recipeFile('print.toml', TOML)
			local report = runMenuItem { original('S1.CR2') }
			assert.matches('1 of 1 photos enhanced', report.message)
			local out = ImageInfo.read(Lr.catalog.added[1].path)
			assert.are.same({ 'tiff', 128, 96, 16 }, { out.format, out.width, out.height, out.bits })
			assert.are.equal(1, #urls('POST', '/v1/recipes/run$'))
		end)

		it('a bad parameter is shown naming the step, and the run stops there', function()
			Lr.prefs.rb_useRecipe, Lr.prefs.rb_recipePath = true, recipeFile('strong.toml', BAD_PARAM)
			local report = runMenuItem { original('T1.CR2'), original('T2.CR2') }
			assert.are.equal(0, #Lr.catalog.added)
			assert.are.equal('warning', report.style)
			assert.matches('T1%.CR2: Recipe strong%.toml failed: The recipe\'s step 1 %(color%-match%) was refused: '
				.. '.*strength', report.message)
			assert.matches('the other 1 photos were not started', report.message)
			assert.are.equal(1, #Lr.sessions, 'T2 was never exported')
			assert.are.same({ 'T1.CR2', 'T2.CR2', 'strong.toml' }, Scratch.list(dir))
		end)

		it('a step that fails while running on one photo: that photo is reported, the others are enhanced', function()
			Lr.prefs.rb_useRecipe, Lr.prefs.rb_recipePath = true, recipeFile('huge.toml', HUGE)
			local big = Lr.newPhoto { path = Scratch.write(dir .. '/H1.CR2', 'raw bytes'), fileFormat = 'RAW',
				renders = { TIFF16 = Env.fixture('large8.jpg') } }
			local report = runMenuItem { big, original('H2.CR2') }
			assert.are.equal(1, #Lr.catalog.added)
			assert.matches('1 of 2 photos enhanced', report.message)
			assert.matches('H1%.CR2: Recipe huge%.toml failed: The photo is too large for Retouch Bridge '
				.. '%(step 1 %(upscale%): the result would be 16000x12800', report.message)
			assert.not_matches('refused', report.message)
			assert.not_matches('not started', report.message)
			assert.are.equal(2, #urls('POST', '/v1/recipes/run$'))
			local out = ImageInfo.read(Lr.catalog.added[1].path)
			assert.are.same({ 'tiff', 1024, 768, 16 }, { out.format, out.width, out.height, out.bits })
		end)

		it('cancel while the recipe job runs: the job is cancelled on the bridge, nothing is stacked', function()
			Lr.prefs.rb_useRecipe, Lr.prefs.rb_recipePath = true, recipeFile('slow.toml', SLOW)
			Lr.onRequest = function(req)
				if req.url:find('/v1/recipes/run$') then Lr.progressScopes[1]:cancel() end
			end
			local report = runMenuItem { original('C1.CR2'), original('C2.CR2') }
			assert.are.equal(0, #Lr.catalog.added)
			assert.matches('Cancelled: C1%.CR2 was stopped', report.message)
			assert.matches('Cancelled: 1 photos were not started', report.message)
			local deletes = urls('DELETE', '/v1/jobs/j%-[%w]+$')
			assert.are.equal(1, #deletes)
			local client = BridgeClient.new { url = Env.url(), token = Env.token() }
			-- A running job stops at its next step: give it a moment (the recipe would run 30 s).
			local state = Lr.runTask(function()
				local job
				for _ = 1, 50 do
					job = assert(client:getJson(deletes[1].url:match('/v1/jobs/.*$')))
					if job.state ~= 'running' then break end
					(import 'LrTasks').sleep(0.1)
				end
				return job.state
			end)
			assert.are.equal('cancelled', state)
			assert.are.same({ 'C1.CR2', 'C2.CR2', 'slow.toml' }, Scratch.list(dir))
		end)

		it('"Run a recipe file" without a file says to choose one and changes nothing', function()
			Lr.prefs.rb_useRecipe, Lr.prefs.rb_recipePath = true, ''
			local report = runMenuItem { original('N1.CR2') }
			assert.are.equal('Choose the recipe file to run.', report.title)
			assert.are.equal(0, #Lr.requests)
		end)
	end)

	it('the settings offer "Run a recipe file" with a Choose… button that opens a TOML/JSON file panel', function()
		local SettingsView = require 'SettingsView'
		local props = (import 'LrBinding').makePropertyTable()
		local EnhanceSettings = require 'EnhanceSettings'
		EnhanceSettings.copy(EnhanceSettings.defaults(), props)
		props.LR_format = 'TIFF'
		SettingsView.observe(props, 'LR_format')
		local view = SettingsView.controls((import 'LrView').osFactory(), props)
		local choose
		for _, button in ipairs(Views.ofKind(view, 'push_button')) do
			if button.title == 'Choose…' then choose = button end
		end
		assert.is_table(choose)
		Lr.openPanelAnswer = nil  -- Cancel changes nothing
		choose.action()
		assert.is_false(props.rb_useRecipe)
		Lr.openPanelAnswer = { '/Users/jo/recipes/shop.toml' }
		choose.action()
		assert.are.same({ 'toml', 'json' }, Lr.openPanels[2].fileTypes)
		assert.is_true(props.rb_useRecipe)
		assert.are.equal('/Users/jo/recipes/shop.toml', props.rb_recipePath)
		assert.are.equal('Recipe shop.toml', props.rb_synopsis)
		props.rb_recipePath = ''
		assert.matches('no recipe file is chosen', props.rb_warning)
	end)
end)
